#!/usr/bin/env bash
# bench/smtp/run.sh: SMTP throughput of ironpost and of Postfix, on this
# machine, in one run, configured the same way: one virtual mailbox domain,
# Maildir delivery, every message on stable storage before its 250 (Postfix:
# the queue file; ironpost: the Maildir file, delivered during the session,
# smtpd_virtual_delivery = yes, its default). A second ironpost instance
# with smtpd_virtual_delivery = no (rows "ip-queue") sends every message
# through its queue first, as Postfix does; QUEUE_ROWS=0 leaves it out.
#
# For each server, sessions (1, 20) and message size (1 KB, 50 KB), Postfix's
# smtp-source sends MESSAGES messages to jerry@example.test and we measure
#   accepted/s  = messages / time until smtp-source has all its 250s
#   delivered/s = messages / time until the last one is in the Maildir
#
# Needs root (Postfix's master runs as root) and Debian's postfix package
# (smtp-source, postfix). Usage: bench/smtp/run.sh [MESSAGES]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/../.."

MESSAGES=${1:-10000}
WORK=$(mktemp -d /tmp/ironpost-bench.XXXXXX)
chmod 755 "$WORK"   # Postfix's daemons run as postfix and must get in
IP_PORT=${IP_PORT:-12525}
PF_PORT=${PF_PORT:-12526}
trap 'cleanup' EXIT

need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing (apt-get install $2)" >&2; exit 1; }; }
need /usr/sbin/smtp-source postfix
need /usr/sbin/postfix postfix
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (Postfix's master needs it)" >&2; exit 1; }

cargo build --release -q -p ironpost
IRONPOST=$PWD/target/release/ironpost

# --- ironpost ---------------------------------------------------------------
$IRONPOST quickstart "$WORK/ip" --domain example.test --user jerry --port-offset 10000 >/dev/null
sed -i "s/^127.0.0.1:10025 /127.0.0.1:$IP_PORT /" "$WORK/ip/etc/master.cf"
QUEUE_ROWS=${QUEUE_ROWS:-1}
IQ_PORT=${IQ_PORT:-12527}
if [ "$QUEUE_ROWS" = 1 ]; then
    $IRONPOST quickstart "$WORK/iq" --domain example.test --user jerry --port-offset 11000 >/dev/null
    sed -i "s/^127.0.0.1:11025 /127.0.0.1:$IQ_PORT /" "$WORK/iq/etc/master.cf"
    printf 'smtpd_virtual_delivery = no\n' >> "$WORK/iq/etc/main.cf"
fi

# --- Postfix, the same way ---------------------------------------------------
PF=$WORK/pf
mkdir -p "$PF/etc" "$PF/spool" "$PF/data" "$PF/vmail"
UID_=$(id -u nobody); GID_=$(id -g nobody)
chown "$UID_:$GID_" "$PF/vmail"
cat > "$PF/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
maillog_file = $PF/maillog
maillog_file_prefixes = /tmp
myhostname = mail.example.test
mydomain = example.test
myorigin = \$mydomain
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
recipient_delimiter = +
virtual_mailbox_domains = example.test
virtual_mailbox_base = $PF/vmail
virtual_mailbox_maps = hash:$PF/etc/vmailbox
virtual_uid_maps = static:$UID_
virtual_gid_maps = static:$GID_
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
CF
printf 'jerry@example.test\texample.test/jerry/\n' > "$PF/etc/vmailbox"
postmap "$PF/etc/vmailbox"
sed "s/^smtp \{1,\}inet/127.0.0.1:$PF_PORT inet/" /usr/share/postfix/master.cf.dist > "$PF/etc/master.cf"
postconf -c "$PF/etc" -F '*/*/chroot = n'
grep -q "^127.0.0.1:$PF_PORT" "$PF/etc/master.cf" || { echo "bench: could not set the Postfix port" >&2; exit 1; }
# Postfix accepts another configuration directory only when the default
# one lists it.
[ -e /etc/postfix/main.cf ] || printf 'compatibility_level = 3.6\n' > /etc/postfix/main.cf
ORIG_ALT=$(postconf -h alternate_config_directories)
postconf -e "alternate_config_directories = $PF/etc${ORIG_ALT:+, $ORIG_ALT}"
postfix -c "$PF/etc" set-permissions >/dev/null 2>&1 || true
chown -R postfix "$PF/data"

cleanup() {
    set +e
    postfix -c "$PF/etc" stop >/dev/null 2>&1
    [ -n "${IP_PID:-}" ] && kill "$IP_PID" 2>/dev/null && wait "$IP_PID" 2>/dev/null
    [ -n "${IQ_PID:-}" ] && kill "$IQ_PID" 2>/dev/null && wait "$IQ_PID" 2>/dev/null
    postconf -e "alternate_config_directories = ${ORIG_ALT:-}"
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}

. bench/settle.sh

count() { { find "$1" -type f 2>/dev/null || true; } | wc -l; }

# measure NAME PORT MAILDIR SESSIONS SIZE
measure() {
    local name=$1 port=$2 maildir=$3 sessions=$4 size=$5
    # Mailboxes are not emptied between rows: deleting thousands of files
    # makes the next file creations on ext4 slow for a minute, which would
    # penalise whichever server runs next.
    # Each row starts once the last one's dirty pages are written back and
    # the machine is idle (bench/settle.sh): a group commit's syncfs writes
    # whatever the file system holds dirty, the other server's files too.
    local before; before=$(count "$maildir")
    settle
    local t0; t0=$(date +%s.%N)
    /usr/sbin/smtp-source -s "$sessions" -m "$MESSAGES" -l "$size" \
        -f bench@example.test -t jerry@example.test "127.0.0.1:$port"
    local t1; t1=$(date +%s.%N)
    local want=$((before + MESSAGES))
    while [ "$(count "$maildir")" -lt "$want" ]; do sleep 0.05; done
    local t2; t2=$(date +%s.%N)
    awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" -v c="$t2" -v name="$name" -v s="$sessions" -v l="$size" \
        'BEGIN { printf "| %-8s | %8d | %6d KB | %10.0f | %11.0f |\n", name, s, l/1024, n/(b-a), n/(c-a) }'
}

$IRONPOST serve -c "$WORK/ip/etc" 2>"$WORK/ip.err" & IP_PID=$!
if [ "$QUEUE_ROWS" = 1 ]; then
    $IRONPOST serve -c "$WORK/iq/etc" 2>"$WORK/iq.err" & IQ_PID=$!
fi
postfix -c "$PF/etc" start >"$WORK/pf-start.log" 2>&1 || { cat "$WORK/pf-start.log" "$PF/maillog" >&2; exit 1; }
up() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
for _ in $(seq 100); do
    up "$IP_PORT" && up "$PF_PORT" && { [ "$QUEUE_ROWS" != 1 ] || up "$IQ_PORT"; } && break
    sleep 0.1
done

echo "$(nproc) cores, $(uname -sr), Postfix $(postconf -h mail_version), ironpost $($IRONPOST version | cut -d' ' -f2), $MESSAGES messages per row"
echo
echo "| server   | sessions | size     | accepted/s | delivered/s |"
echo "|----------|---------:|---------:|-----------:|------------:|"
for size in 1024 51200; do
    for sessions in 1 20; do
        measure ironpost "$IP_PORT" "$WORK/ip/vmail/example.test/jerry" "$sessions" "$size"
        if [ "$QUEUE_ROWS" = 1 ]; then
            measure ip-queue "$IQ_PORT" "$WORK/iq/vmail/example.test/jerry" "$sessions" "$size"
        fi
        measure postfix "$PF_PORT" "$PF/vmail/example.test/jerry" "$sessions" "$size"
    done
done
