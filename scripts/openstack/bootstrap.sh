#!/bin/sh
# Configures the OpenStack of this machine (Debian 12's Zed, baked into its image) for weft's
# tests, once: MariaDB and RabbitMQ, keystone with project `weft`, user `weft` and an
# application credential, glance with one image, placement, nova with the fake compute
# driver, neutron-server with ML2 and no agents, a flavor, a network and subnet. A second run
# only waits for the APIs to answer. Writes /root/weft-openstack/{openrc,clouds.yaml}.
set -eu

out=/root/weft-openstack
done_marker=$out/.configured
mkdir -p -m 0700 $out
ip=$(ip -4 -o addr show scope global | awk '{ split($4, a, "/"); print a[1]; exit }')
[ -n "$ip" ] || { echo "no IPv4 address" >&2; exit 1; }

# Waits up to $2 seconds (default 300: a host running a whole test suite starts them slowly)
# for URL $1 to answer at all (any HTTP status).
wait_for() {
    deadline=$(( $(date +%s) + ${2:-300} ))
    until curl -s -o /dev/null --max-time 5 "$1"; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "$1 does not answer" >&2; exit 1; }
        sleep 1
    done
}

services="keystone glance-api placement-api nova-api nova-conductor nova-scheduler nova-compute neutron-api neutron-rpc-server"

# The API servers' workers and the RabbitMQ heartbeats, set on every run so a machine
# configured by an older version of this script gets them too; prints the services whose
# files changed. Nova's and Neutron's APIs monkey-patch eventlet under uWSGI: with several
# threads in one worker, a request waiting on RabbitMQ is woken on another thread's hub, which
# runs only when another request comes, so a lone request hung for minutes (CI saw a server
# DELETE take over 300 s). They get one thread in each of two workers. Their heartbeat thread
# runs only while a request does, so RabbitMQ dropped idle connections and the next call
# reconnected first; on this loopback-only machine heartbeats are off.
tune() {
    for ini in /etc/keystone/keystone-uwsgi.ini /etc/glance/glance-api-uwsgi.ini \
        /etc/placement/placement-api-uwsgi.ini /etc/nova/nova-api-uwsgi.ini \
        /etc/neutron/neutron-api-uwsgi.ini; do
        case "$ini" in
        */nova-api-uwsgi.ini | */neutron-api-uwsgi.ini) workers=2 threads=1 ;;
        *) workers=1 threads=8 ;;
        esac
        before=$(cksum <"$ini")
        sed -i -e "s/^processes = .*/processes = $workers/" -e "s/^threads = .*/threads = $threads/" "$ini"
        [ "$(cksum <"$ini")" = "$before" ] || basename "$ini" -uwsgi.ini
    done
    for conf in /etc/nova/nova.conf /etc/neutron/neutron.conf; do
        [ -f "$conf" ] || continue
        grep -q '^heartbeat_timeout_threshold = 0' "$conf" && continue
        printf '[oslo_messaging_rabbit]\nheartbeat_timeout_threshold = 0\n' >>"$conf"
        case "$conf" in
        */nova.conf) echo nova-api nova-conductor nova-scheduler nova-compute ;;
        *) echo neutron-api neutron-rpc-server ;;
        esac
    done
}

if [ -f "$done_marker" ] && [ "$(cat "$done_marker")" = "$ip" ]; then
    changed=$(tune | tr '\n' ' ')
    systemctl start mariadb rabbitmq-server $services
    # shellcheck disable=SC2086
    [ -z "$changed" ] || systemctl restart $changed
    for url in http://$ip:5000/v3 http://$ip:9292 http://$ip:8778 http://$ip:8774 http://$ip:9696; do
        wait_for "$url"
    done
    echo "openstack: already configured on $ip"
    exit 0
fi

secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' | cut -c1-24; }
if [ -f $out/secrets ]; then
    . $out/secrets
else
    db=$(secret) rabbit=$(secret) admin=$(secret) service=$(secret) user=$(secret)
    printf 'db=%s\nrabbit=%s\nadmin=%s\nservice=%s\nuser=%s\n' \
        "$db" "$rabbit" "$admin" "$service" "$user" >$out/secrets
fi

# The packages' own services started with Debian's defaults at first boot; stop them while
# their files change.
systemctl stop $services nova-api-metadata 2>/dev/null || true
systemctl disable --now nova-api-metadata 2>/dev/null || true
systemctl start mariadb rabbitmq-server

for name in keystone glance placement nova_api nova nova_cell0 neutron; do
    mysql -e "CREATE DATABASE IF NOT EXISTS $name;
        CREATE USER IF NOT EXISTS 'openstack'@'localhost' IDENTIFIED BY '$db';
        ALTER USER 'openstack'@'localhost' IDENTIFIED BY '$db';
        GRANT ALL PRIVILEGES ON $name.* TO 'openstack'@'localhost';"
done
rabbitmqctl add_user openstack "$rabbit" 2>/dev/null || rabbitmqctl change_password openstack "$rabbit"
rabbitmqctl set_permissions openstack '.*' '.*' '.*'

dburl() { echo "mysql+pymysql://openstack:$db@localhost/$1"; }
rabbit_url="rabbit://openstack:$rabbit@127.0.0.1:5672/"
tune >/dev/null

# keystone_authtoken for the service user $1.
authtoken() {
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://$ip:5000
auth_url = http://$ip:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $service
EOF
}

cat >/etc/keystone/keystone.conf <<EOF
[DEFAULT]
log_dir = /var/log/keystone
[database]
connection = $(dburl keystone)
[token]
provider = fernet
EOF
keystone-manage db_sync
keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone
keystone-manage credential_setup --keystone-user keystone --keystone-group keystone
keystone-manage bootstrap --bootstrap-password "$admin" \
    --bootstrap-admin-url "http://$ip:5000/v3/" \
    --bootstrap-internal-url "http://$ip:5000/v3/" \
    --bootstrap-public-url "http://$ip:5000/v3/" \
    --bootstrap-region-id RegionOne
chown -R keystone:keystone /var/log/keystone
systemctl restart keystone
wait_for http://$ip:5000/v3

export OS_AUTH_URL=http://$ip:5000/v3 OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne \
    OS_USERNAME=admin OS_PASSWORD="$admin" OS_PROJECT_NAME=admin \
    OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
os() { openstack "$@"; }
# `openstack ... create` when `openstack ... show $2` finds nothing.
ensure() { kind=$1 name=$2; shift 2; os $kind show "$name" >/dev/null 2>&1 || os $kind create "$@" "$name" >/dev/null; }

ensure project service --domain default
ensure project weft --domain default
ensure role member
ensure user weft --domain default --password "$user"
os role add --project weft --user weft member
os role add --project weft --user weft reader 2>/dev/null || true
for svc in glance placement nova neutron; do
    ensure user $svc --domain default --password "$service"
    os user set --password "$service" $svc
    os role add --project service --user $svc admin
done
# type name port path
for entry in "image glance 9292 " "placement placement 8778 " "compute nova 8774 /v2.1" "network neutron 9696 "; do
    set -- $entry
    if ! os service show "$2" >/dev/null 2>&1; then
        os service create --name "$2" "$1" >/dev/null
        for iface in public internal admin; do
            os endpoint create --region RegionOne "$1" $iface "http://$ip:$3${4:-}" >/dev/null
        done
    fi
done

cat >/etc/glance/glance-api.conf <<EOF
[DEFAULT]
log_dir = /var/log/glance
enabled_backends = file:file
[database]
connection = $(dburl glance)
$(authtoken glance)
[paste_deploy]
flavor = keystone
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = /var/lib/glance/images/
[os_glance_tasks_store]
filesystem_store_datadir = /var/lib/glance/tasks_work_dir
[os_glance_staging_store]
filesystem_store_datadir = /var/lib/glance/staging
EOF
mkdir -p /var/lib/glance/images /var/lib/glance/tasks_work_dir /var/lib/glance/staging
chown -R glance:glance /var/lib/glance /var/log/glance
glance-manage db_sync >/dev/null

cat >/etc/placement/placement.conf <<EOF
[DEFAULT]
log_dir = /var/log/placement
[placement_database]
connection = $(dburl placement)
[api]
auth_strategy = keystone
$(authtoken placement)
EOF
placement-manage db sync

cat >/etc/nova/nova.conf <<EOF
[DEFAULT]
log_dir = /var/log/nova
state_path = /var/lib/nova
transport_url = $rabbit_url
my_ip = $ip
compute_driver = weft_fake.Driver
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
[api]
auth_strategy = keystone
[api_database]
connection = $(dburl nova_api)
[database]
connection = $(dburl nova)
$(authtoken nova)
[service_user]
send_service_user_token = true
auth_url = http://$ip:5000/v3
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = $service
[placement]
region_name = RegionOne
auth_url = http://$ip:5000/v3
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = placement
password = $service
[neutron]
region_name = RegionOne
auth_url = http://$ip:5000/v3
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = neutron
password = $service
[glance]
region_name = RegionOne
[scheduler]
discover_hosts_in_cells_interval = 10
[oslo_concurrency]
lock_path = /var/lib/nova/tmp
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
EOF
# Nova's fake driver boots nothing and reports a host big enough for every test; this one
# also gives a snapshot's image data, so the image becomes active and servers can boot from it.
cat >/usr/lib/python3/dist-packages/nova/virt/weft_fake.py <<'EOF'
"""The fake compute driver, with snapshots whose image Glance gets data for (weft's tests)."""
import io

from nova.image import glance
from nova.virt import fake


class Driver(fake.FakeDriver):
    def snapshot(self, context, instance, image_id, update_task_state):
        super().snapshot(context, instance, image_id, update_task_state)
        glance.API().update(context, image_id,
                            {"disk_format": "raw", "container_format": "bare"},
                            io.BytesIO(bytes(4096)), purge_props=False)
EOF
cat >/etc/nova/nova-compute.conf <<EOF
[DEFAULT]
compute_driver = weft_fake.Driver
EOF
nova-manage api_db sync
nova-manage cell_v2 map_cell0 >/dev/null
nova-manage cell_v2 list_cells | grep -q ' cell1 ' || nova-manage cell_v2 create_cell --name=cell1 >/dev/null
nova-manage db sync

cat >/etc/neutron/neutron.conf <<EOF
[DEFAULT]
log_dir = /var/log/neutron
state_path = /var/lib/neutron
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = $rabbit_url
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
[database]
connection = $(dburl neutron)
$(authtoken neutron)
[oslo_concurrency]
lock_path = /var/lib/neutron/tmp
EOF
cat >/etc/neutron/plugins/ml2/ml2_conf.ini <<EOF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = weft_fake
extension_drivers = port_security
[ml2_type_flat]
flat_networks = physnet1
[ml2_type_vxlan]
vni_ranges = 1:1000
EOF
# No agent runs: a mechanism driver that binds every port, so nova's ports come up ACTIVE.
site=/usr/local/lib/python3.11/dist-packages
mkdir -p $site/weft_fake_bind $site/weft_fake_bind-1.0.dist-info
cat >$site/weft_fake_bind/__init__.py <<'EOF'
"""An ML2 mechanism driver for a test cloud without agents: binds every port at once."""
from neutron_lib.plugins.ml2 import api


class Driver(api.MechanismDriver):
    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], "ovs", {"port_filter": True}, status="ACTIVE")
            return
EOF
printf 'Metadata-Version: 2.1\nName: weft-fake-bind\nVersion: 1.0\n' >$site/weft_fake_bind-1.0.dist-info/METADATA
printf '[neutron.ml2.mechanism_drivers]\nweft_fake = weft_fake_bind:Driver\n' \
    >$site/weft_fake_bind-1.0.dist-info/entry_points.txt
neutron-db-manage --config-file /etc/neutron/neutron.conf \
    --config-file /etc/neutron/plugins/ml2/ml2_conf.ini upgrade head >/dev/null 2>&1
mkdir -p /var/lib/nova/tmp /var/lib/neutron/tmp
chown -R nova:nova /var/lib/nova /var/log/nova
chown -R neutron:neutron /var/lib/neutron /var/log/neutron
chown -R placement:placement /var/log/placement

tune >/dev/null
systemctl restart $services
for url in http://$ip:9292 http://$ip:8778 http://$ip:8774 http://$ip:9696; do
    wait_for "$url"
done

ensure flavor weft.small --ram 512 --disk 1 --vcpus 1 --public
if ! os image show weft-test >/dev/null 2>&1; then
    head -c 1M /dev/zero >/tmp/weft-test.img
    os image create --public --disk-format raw --container-format bare \
        --file /tmp/weft-test.img weft-test >/dev/null
    rm -f /tmp/weft-test.img
fi
ensure network public --share --external --provider-network-type flat \
    --provider-physical-network physnet1
ensure subnet public-v4 --network public --subnet-range 192.0.2.0/24 --no-dhcp
# The compute host shows up in the cell once nova-compute registered it.
deadline=$(( $(date +%s) + 300 ))
until nova-manage cell_v2 discover_hosts 2>/dev/null && os compute service list --service nova-compute -f value -c State | grep -q up; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "nova-compute did not come up" >&2; exit 1; }
    sleep 2
done
nova-manage cell_v2 discover_hosts >/dev/null

# The test user's application credential, made as that user.
export OS_USERNAME=weft OS_PASSWORD="$user" OS_PROJECT_NAME=weft
# The project's own network (a tenant network, vxlan), where Neutron's default policy lets
# members give ports allowed address pairs (virtual IPs); `public` is shared and admin's.
ensure network weft-net
ensure subnet weft-net-v4 --network weft-net --subnet-range 10.99.0.0/24 --no-dhcp
if ! os application credential show weft-tests >/dev/null 2>&1; then
    os application credential create weft-tests -f shell -c id -c secret >$out/appcred
fi
. $out/appcred

cat >$out/openrc <<EOF
export OS_AUTH_URL=http://$ip:5000/v3
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME=RegionOne
export OS_USERNAME=weft
export OS_PASSWORD=$user
export OS_PROJECT_NAME=weft
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
EOF
cat >$out/clouds.yaml <<EOF
clouds:
  weft-test:
    auth:
      auth_url: http://$ip:5000/v3
      username: weft
      password: $user
      project_name: weft
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
  weft-test-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://$ip:5000/v3
      application_credential_id: $id
      application_credential_secret: $secret
    region_name: RegionOne
    identity_api_version: 3
EOF
echo "$ip" >"$done_marker"
echo "openstack: configured on $ip"
