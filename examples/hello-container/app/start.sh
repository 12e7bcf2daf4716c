# Writes the page, then serves /www on $PORT: weft gives each container its port, and the
# env's `env` (GREETING) and WEFT_HOST, the machine's name.
read -r version < /app/VERSION
echo "$GREETING $version from $WEFT_HOST" > /www/index.html
exec /bin/busybox httpd -f -p "$PORT" -h /www
