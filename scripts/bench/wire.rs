//! A network link in user space, for the bench fleet: it carries every IP packet between two
//! TUN devices (one on this host, one moved into the fleet's network namespace) and delays each
//! one by half the round trip (plus jitter), or drops it at the loss rate, as `tc netem` would.
//! This kernel has no netem qdisc, so the link is this process; it keeps each direction in
//! order.
//!
//!     wire HOST_TUN NS_TUN --delay-ms 25 --jitter-ms 2 --loss 1 [--ready FILE] [--trace FILE]
//!
//! Without loss or a trace, both devices offload segmentation (a virtio-net header on each
//! packet): TCP sends what its window allows, a run of packets crossing as one segment of up
//! to 64 KiB that the far side's kernel splits, as with a NIC's segmentation offload.
//!
//! `--trace FILE` writes a line per TCP packet as it enters the link (seconds, `>` towards the
//! namespace or `<` from it, ports, flags, payload bytes, `lost` when dropped): the round trips
//! of a login or a command, counted on the wire.
//!
//! Both TUN devices exist already (`ip tuntap add ... mode tun`); this process attaches to them
//! and runs until killed. It is one file with the standard library only, built by
//! scripts/fleet.sh with `rustc -O`: a 1,000-host run moves over a million packets, and the
//! link's own CPU is not one a real network would take from the controller.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

const TUNSETIFF: u64 = 0x4004_54CA;
const TUNSETOFFLOAD: u64 = 0x4004_54D0;
const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;
const IFF_VNET_HDR: i16 = 0x4000;
/// Checksums left to the receiver and TCP segmentation offload, for IPv4 and IPv6.
const TUN_F_CSUM_TSO: u64 = 0x01 | 0x02 | 0x04;
const O_NONBLOCK: i32 = 0o4000;
const POLLIN: i16 = 1;

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    pad: [u8; 22],
}

#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

#[repr(C)]
struct TimeSpec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn ioctl(fd: i32, request: u64, ...) -> i32;
    fn ppoll(fds: *mut PollFd, n: u64, timeout: *const TimeSpec, sigmask: *const u8) -> i32;
}

/// TUN device `name`, non-blocking, packets without a header; with `offload`, each packet
/// has a virtio-net header instead and may be a TCP segment of up to 64 KiB that the kernel
/// splits on the far side, as a NIC with segmentation offload would.
fn attach(name: &str, offload: bool) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; 16],
        flags: IFF_TUN | IFF_NO_PI | if offload { IFF_VNET_HDR } else { 0 },
        pad: [0; 22],
    };
    let bytes = name.as_bytes();
    if bytes.len() >= req.name.len() {
        return Err(std::io::Error::new(ErrorKind::InvalidInput, "device name too long"));
    }
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: TUNSETIFF reads a `struct ifreq`, which IfReq lays out (40 bytes).
    if unsafe { ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: TUNSETOFFLOAD takes its flags as the argument itself.
    if offload && unsafe { ioctl(file.as_raw_fd(), TUNSETOFFLOAD, TUN_F_CSUM_TSO) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// A small xorshift generator: loss and jitter need no more.
struct Rng(u64);

impl Rng {
    /// A number in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Settings {
    delay: Duration,
    jitter: Duration,
    loss: f64,
}

/// Packets read from `src`, written to `dst` after the delay, in the order read.
struct Direction {
    src: File,
    dst: File,
    arrow: char,
    queue: VecDeque<(Instant, Vec<u8>)>,
    last: Instant,
}

impl Direction {
    /// Reads every packet waiting on `src` into the queue, or drops it.
    fn read(&mut self, set: &Settings, rng: &mut Rng, trace: &mut Option<Trace>) {
        // A 64 KiB segment with its virtio-net header.
        let mut buf = vec![0u8; 65536 + 64];
        loop {
            let n = match self.src.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("wire: read: {e}");
                    return;
                }
            };
            let packet = &buf[..n];
            let lost = set.loss > 0.0 && rng.next() < set.loss;
            if let Some(trace) = trace {
                trace.note(self.arrow, packet, lost);
            }
            if lost {
                continue;
            }
            let mut at = Instant::now() + set.delay;
            if !set.jitter.is_zero() {
                let r = rng.next() * 2.0 - 1.0;
                let shift = set.jitter.mul_f64(r.abs());
                at = if r >= 0.0 {
                    at + shift
                } else {
                    at.checked_sub(shift).unwrap_or(at)
                };
            }
            // Jitter never reorders a direction: a packet leaves no earlier than the one before.
            at = at.max(self.last);
            self.last = at;
            self.queue.push_back((at, packet.to_vec()));
        }
    }

    /// Writes the packets whose time has come.
    fn write_due(&mut self, now: Instant) {
        while let Some((at, _)) = self.queue.front() {
            if *at > now {
                return;
            }
            if let Some((_, packet)) = self.queue.pop_front() {
                // A full queue on the far side drops the packet, as a real link would.
                let _ = self.dst.write(&packet);
            }
        }
    }
}

/// The `--trace` file and the time it counts from.
struct Trace {
    file: File,
    start: Instant,
}

impl Trace {
    /// One line for a TCP over IPv4 packet; others are not traced.
    fn note(&mut self, arrow: char, p: &[u8], lost: bool) {
        if p.len() < 40 || p[0] >> 4 != 4 || p[9] != 6 {
            return;
        }
        let ihl = usize::from(p[0] & 0xF) * 4;
        if p.len() < ihl + 14 {
            return;
        }
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let sport = u16::from_be_bytes([p[ihl], p[ihl + 1]]);
        let dport = u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]);
        let offset = usize::from(p[ihl + 12] >> 4) * 4;
        let flags = p[ihl + 13];
        let names: String = [(2, 'S'), (16, '.'), (8, 'P'), (1, 'F'), (4, 'R')]
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, name)| *name)
            .collect();
        let size = total.saturating_sub(ihl + offset);
        let _ = writeln!(
            self.file,
            "{:.4} {arrow} {sport}->{dport} {names} {size}{}",
            self.start.elapsed().as_secs_f64(),
            if lost { " lost" } else { "" }
        );
    }
}

fn value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn millis(args: &[String], flag: &str) -> Result<Duration, String> {
    let text = value(args, flag).unwrap_or_else(|| "0".into());
    let ms: f64 = text.parse().map_err(|_| format!("{flag}: not a number: {text}"))?;
    if !(0.0..=60_000.0).contains(&ms) {
        return Err(format!("{flag}: out of range: {text}"));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(host), Some(ns)) = (args.first(), args.get(1)) else {
        return Err("usage: wire HOST_TUN NS_TUN [--delay-ms MS] [--jitter-ms MS] [--loss PCT] [--ready FILE] [--trace FILE]".into());
    };
    let loss_text = value(&args, "--loss").unwrap_or_else(|| "0".into());
    let loss: f64 = loss_text
        .parse()
        .map_err(|_| format!("--loss: not a number: {loss_text}"))?;
    let set = Settings {
        delay: millis(&args, "--delay-ms")?,
        jitter: millis(&args, "--jitter-ms")?,
        loss: loss / 100.0,
    };
    // Whole segments of up to 64 KiB cross the link when nothing is lost or traced: a lost one
    // would be a burst of up to 44 packets, and the trace counts packets. The wire's and the
    // kernel's work per packet then drops some fortyfold for a bulk transfer; TCP still sends
    // what its congestion window allows, so the round trips are those of 1,500-byte packets.
    let trace_path = value(&args, "--trace");
    let offload = loss == 0.0 && trace_path.is_none();
    let a = attach(host, offload).map_err(|e| format!("{host}: {e}"))?;
    let b = attach(ns, offload).map_err(|e| format!("{ns}: {e}"))?;
    if let Some(ready) = value(&args, "--ready") {
        std::fs::write(&ready, format!("{}\n", std::process::id()))
            .map_err(|e| format!("{ready}: {e}"))?;
    }
    let mut trace = match trace_path {
        Some(path) => Some(Trace {
            file: OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("{path}: {e}"))?,
            start: Instant::now(),
        }),
        None => None,
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut rng = Rng(seed);
    let now = Instant::now();
    let mut dirs = [
        Direction {
            src: a.try_clone().map_err(|e| e.to_string())?,
            dst: b.try_clone().map_err(|e| e.to_string())?,
            arrow: '>',
            queue: VecDeque::new(),
            last: now,
        },
        Direction {
            src: b,
            dst: a,
            arrow: '<',
            queue: VecDeque::new(),
            last: now,
        },
    ];
    loop {
        let now = Instant::now();
        for dir in dirs.iter_mut() {
            dir.write_due(now);
        }
        let next = dirs.iter().filter_map(|d| d.queue.front().map(|(at, _)| *at)).min();
        let wait = next.map(|at| at.saturating_duration_since(Instant::now()));
        let timeout = wait.map(|w| TimeSpec {
            sec: w.as_secs() as i64,
            nsec: i64::from(w.subsec_nanos()),
        });
        let mut fds = [
            PollFd {
                fd: dirs[0].src.as_raw_fd(),
                events: POLLIN,
                revents: 0,
            },
            PollFd {
                fd: dirs[1].src.as_raw_fd(),
                events: POLLIN,
                revents: 0,
            },
        ];
        let timeout_ptr = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const TimeSpec);
        // SAFETY: two valid pollfds, a timespec or null, no signal mask.
        let ready = unsafe { ppoll(fds.as_mut_ptr(), 2, timeout_ptr, std::ptr::null()) };
        if ready < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {err}"));
        }
        for (dir, fd) in dirs.iter_mut().zip(fds.iter()) {
            if fd.revents != 0 {
                dir.read(&set, &mut rng, &mut trace);
            }
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("wire: {e}");
        std::process::exit(1);
    }
}
