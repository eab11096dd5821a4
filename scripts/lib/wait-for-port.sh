# Sourced by the bench scripts: wait_for_port PORT returns once something accepts connections on 127.0.0.1:PORT,
# or fails after 10 seconds.
wait_for_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2; return 1
}
