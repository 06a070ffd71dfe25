#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft) as local processes, for development and tests.
#
#   kafka.sh fetch                 jars from Maven Central into deploy/local/.lib (once)
#   kafka.sh up | down | status    one combined broker+controller on 127.0.0.1:$SAFETRAIL_KAFKA_PORT
#   kafka.sh cluster-up | cluster-down | cluster-status
#                                  three combined nodes on 127.0.0.1 (fault tests)
#   kafka.sh node-stop N | node-kill N | node-start N
#                                  stop (SIGTERM), kill -9 or restart node N (1..3) of the cluster
#
# Environment (all optional):
#   SAFETRAIL_KAFKA_PORT           single broker port (9092); its controller listens on
#   SAFETRAIL_KAFKA_CONTROLLER_PORT  (port + 1)
#   SAFETRAIL_KAFKA_DIR            state: data, logs, pid files (deploy/local/.kafka)
#   SAFETRAIL_KAFKA_CLUSTER_PORTS  three broker ports ("19092 19093 19094")
#   SAFETRAIL_KAFKA_CLUSTER_CONTROLLER_PORTS  three controller ports (broker ports + 100)
#   SAFETRAIL_KAFKA_HEAP           JVM heap per node (512m; the machines have 2 cores, 24 GB)
#   SAFETRAIL_KAFKA_START_TIMEOUT  seconds to wait for a node to report "started" (90)
#   SAFETRAIL_KAFKA_LIB            jar directory (deploy/local/.lib)
#
# Processes are stopped only through their own PID files, never by name.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="${SAFETRAIL_KAFKA_LIB:-$HERE/.lib}"
STATE="${SAFETRAIL_KAFKA_DIR:-$HERE/.kafka}"
PORT="${SAFETRAIL_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${SAFETRAIL_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
HEAP="${SAFETRAIL_KAFKA_HEAP:-512m}"
START_TIMEOUT="${SAFETRAIL_KAFKA_START_TIMEOUT:-90}"
read -r -a CLUSTER_PORTS <<<"${SAFETRAIL_KAFKA_CLUSTER_PORTS:-19092 19093 19094}"
if [[ -n "${SAFETRAIL_KAFKA_CLUSTER_CONTROLLER_PORTS:-}" ]]; then
  read -r -a CLUSTER_CPORTS <<<"$SAFETRAIL_KAFKA_CLUSTER_CONTROLLER_PORTS"
else
  CLUSTER_CPORTS=()
  for p in "${CLUSTER_PORTS[@]}"; do CLUSTER_CPORTS+=("$((p + 100))"); done
fi
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

die() { echo "kafka.sh: $*" >&2; exit 1; }
say() { echo "kafka.sh: $*" >&2; }

# --- fetch -------------------------------------------------------------------------------

fetch() {
  local stamp="$LIB/.pom.sha256" want
  want="$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)"
  # The stamp makes a repeated fetch a no-op (no Maven start-up) until pom.xml changes.
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && compgen -G "$LIB/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka jars"
  tmp="$LIB.tmp.$$"
  rm -rf "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  # Into a temporary directory first so an interrupted fetch never leaves a half set of jars.
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
  echo "$want" >"$LIB/.pom.sha256"
  say "fetched $(find "$LIB" -name '*.jar' | wc -l) jars into $LIB"
}

# --- one node ----------------------------------------------------------------------------

# write_node DIR NODE_ID PORT CONTROLLER_PORT VOTERS REPLICATION
write_node() {
  local dir="$1" id="$2" port="$3" cport="$4" voters="$5" rf="$6" min_isr
  min_isr=$((rf > 1 ? 2 : 1))
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<EOF
# Written by deploy/local/kafka.sh; edits are overwritten on the next start.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
# Topics are created by safetrail with partitions and retention from settings; a typo in a
# topic name should fail loudly instead of creating a stray topic.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
# 50 partitions each (the defaults) cost seconds of start-up on two cores; a local broker
# never needs them.
offsets.topic.num.partitions=6
transaction.state.log.num.partitions=6
# Consumers join without the 3 s wait meant for production rolling starts.
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $dir/logs/server.log
appender.file.filePattern = $dir/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
EOF
}

# jvm DIR: the java command line for a node, in the JVM array (an array, not a function, so
# that `"${JVM[@]}" ... &` makes $! the JVM's own PID and the PID file names the broker).
jvm() {
  # Small heap, G1 with short pauses (Kafka's own defaults, scaled down).
  JVM=("$JAVA" -Xms128m "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$1/log4j2.properties"
    "-Dkafka.logs.dir=$1/logs" -cp "$LIB/*")
}

# format_node DIR CLUSTER_ID: KRaft storage is formatted once; restarts keep the data.
format_node() {
  [[ -f "$1/data/meta.properties" ]] && return 0
  jvm "$1"
  "${JVM[@]}" kafka.tools.StorageTool format --ignore-formatted \
    -t "$2" -c "$1/server.properties" >"$1/logs/format.log" 2>&1 ||
    { cat "$1/logs/format.log" >&2; die "formatting $1 failed"; }
}

alive() { [[ -f "$1/kafka.pid" ]] && is_ours "$(cat "$1/kafka.pid")" "$1"; }

# is_ours PID DIR: the PID is a live JVM started with this node's server.properties (a stale
# PID file whose number was reused by another process is never signalled).
is_ours() {
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"$2/server.properties"* ]]
}

start_node() {
  local dir="$1" port="$2"
  if alive "$dir"; then say "already running in $dir (pid $(cat "$dir/kafka.pid"))"; return 0; fi
  [[ -d "$LIB" ]] || die "no jars in $LIB: run 'bash deploy/local/kafka.sh fetch' first"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "127.0.0.1:$port is already in use by another process; choose another port"
  fi
  # Only log lines written after this point count as this start's "started".
  local mark
  mark="$(cat "$dir/logs/server.log" 2>/dev/null | wc -l)"
  jvm "$dir"
  "${JVM[@]}" kafka.Kafka "$dir/server.properties" >>"$dir/logs/console.log" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
  wait_started "$dir" "$port" "$mark"
}

wait_started() {
  local dir="$1" port="$2" mark="$3" pid deadline
  pid="$(cat "$dir/kafka.pid")"
  deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || {
      tail -n 30 "$dir/logs/console.log" "$dir/logs/server.log" >&2 2>/dev/null || true
      die "broker in $dir exited during start-up (logs above)"
    }
    # Ready = the server says so AND the port answers (the log line alone precedes the
    # listener on some restarts; the port alone answers before the metadata is loaded).
    if awk -v m="$mark" 'NR > m && /Kafka Server started/ {f = 1} END {exit !f}' \
      "$dir/logs/server.log" 2>/dev/null &&
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  # A node that never came up is not left running behind the caller's back.
  stop_node "$dir" KILL
  die "broker in $dir did not start within ${START_TIMEOUT}s (see $dir/logs/server.log)"
}

# stop_node DIR SIGNAL
stop_node() {
  local dir="$1" sig="${2:-TERM}" pid
  [[ -f "$dir/kafka.pid" ]] || return 0
  pid="$(cat "$dir/kafka.pid")"
  if is_ours "$pid" "$dir"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    # A controlled shutdown takes a few seconds; after 30 s it is not coming.
    for _ in $(seq 1 150); do is_ours "$pid" "$dir" || break; sleep 0.2; done
    if is_ours "$pid" "$dir"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$dir/kafka.pid"
}

cluster_id() {
  # One id per state directory, kept so that a restart joins the same cluster.
  local f="$1/cluster.id"
  # 16 random bytes, base64url without padding: what `StorageTool random-uuid` prints, without
  # paying a JVM start for it. One id in 64 would start with '-', which StorageTool reads as
  # an option ("--cluster-id: expected one argument"); such a draw is made again.
  local id
  if [[ ! -f "$f" ]]; then
    id=-
    while [[ $id == -* ]]; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
    done
    echo "$id" >"$f"
  fi
  cat "$f"
}

# --- single broker -----------------------------------------------------------------------

up() {
  local dir="$STATE/single"
  mkdir -p "$dir/logs"
  if alive "$dir"; then say "already running on 127.0.0.1:$PORT"; return 0; fi
  write_node "$dir" 1 "$PORT" "$CONTROLLER_PORT" "1@127.0.0.1:$CONTROLLER_PORT" 1
  format_node "$dir" "$(cluster_id "$dir")"
  start_node "$dir" "$PORT"
  say "Apache Kafka up on 127.0.0.1:$PORT (pid $(cat "$dir/kafka.pid"), logs $dir/logs)"
}

down() { stop_node "$STATE/single" TERM; say "stopped"; }

status() {
  if alive "$STATE/single"; then echo "running pid $(cat "$STATE/single/kafka.pid")"
  else echo "stopped"; return 1; fi
}

# --- three-node cluster ------------------------------------------------------------------

node_dir() { echo "$STATE/cluster/node$1"; }

cluster_voters() {
  local v="" i
  for i in 1 2 3; do v+="${v:+,}$i@127.0.0.1:${CLUSTER_CPORTS[$((i - 1))]}"; done
  echo "$v"
}

cluster_up() {
  ((${#CLUSTER_PORTS[@]} == 3 && ${#CLUSTER_CPORTS[@]} == 3)) || die "need three cluster ports"
  mkdir -p "$STATE/cluster/logs"
  local id i voters pids=()
  id="$(cluster_id "$STATE/cluster")"
  voters="$(cluster_voters)"
  for i in 1 2 3; do
    write_node "$(node_dir $i)" "$i" "${CLUSTER_PORTS[$((i - 1))]}" \
      "${CLUSTER_CPORTS[$((i - 1))]}" "$voters" 3
    format_node "$(node_dir $i)" "$id"
  done
  # The three must start together: none reports "started" before a controller quorum forms.
  for i in 1 2 3; do node_start "$i" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || die "a cluster node failed to start"; done
  say "cluster up on 127.0.0.1:${CLUSTER_PORTS[0]},${CLUSTER_PORTS[1]},${CLUSTER_PORTS[2]}"
}

node_start() {
  local i="$1"
  [[ "$i" =~ ^[123]$ ]] || die "node must be 1, 2 or 3"
  start_node "$(node_dir "$i")" "${CLUSTER_PORTS[$((i - 1))]}"
}

cluster_down() {
  local i pids=()
  for i in 1 2 3; do stop_node "$(node_dir $i)" TERM & pids+=($!); done
  wait "${pids[@]}"
  say "cluster stopped"
}

cluster_status() {
  local i rc=0
  for i in 1 2 3; do
    if alive "$(node_dir "$i")"; then echo "node$i running pid $(cat "$(node_dir "$i")/kafka.pid")"
    else echo "node$i stopped"; rc=1; fi
  done
  return $rc
}

case "${1:-}" in
  fetch) fetch ;;
  up) fetch; up ;;
  down) down ;;
  status) status ;;
  cluster-up) fetch; cluster_up ;;
  cluster-down) cluster_down ;;
  cluster-status) cluster_status ;;
  node-start) node_start "${2:?node number}" ;;
  node-stop) stop_node "$(node_dir "${2:?node number}")" TERM ;;
  node-kill) stop_node "$(node_dir "${2:?node number}")" KILL ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
