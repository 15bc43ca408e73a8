#!/bin/sh
# Backup and restore throughput of a 200 MB volume (100 MB of random bytes, 100 MB of
# text, 200 files), against `tar | zstd -1` and `zstd -d | tar -x` of the same files on
# the host. Uses a throwaway DOCKER_CONFIG with the plugin built in bin/.
set -eu
cd "$(dirname "$0")/.."
make -s build
work=$(mktemp -d)
export DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG/cli-plugins" "$work/data"
cp bin/docker-lifecycle "$DOCKER_CONFIG/cli-plugins/"
project=bench-backup-$$
cleanup() {
	docker rm -f "$project-fill" >/dev/null 2>&1 || true
	docker volume rm -f "${project}_warm" "${project}_data" "${project}-copy_data" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

i=0
while [ $i -lt 100 ]; do
	head -c 1048576 /dev/urandom > "$work/data/random-$i.bin"
	seq 1 200000 | head -c 1048576 > "$work/data/text-$i.txt"
	i=$((i + 1))
done
docker volume create --label com.docker.compose.project=$project --label com.docker.compose.volume=data "${project}_data" >/dev/null
img=$(docker image ls --format '{{.Repository}}:{{.Tag}}' docker-lifecycle-agent | head -1)
docker create --name "$project-fill" -v "${project}_data:/data" "$img" >/dev/null
tar -C "$work/data" -c . | docker cp - "$project-fill:/data"

secs() { python3 -c "import time; print(time.time())"; }
t0=$(secs); tar -C "$work/data" -c . | zstd -1 -q > "$work/host.tar.zst"; t1=$(secs)
mkdir "$work/host-out"; t2=$(secs); zstd -d -q -c "$work/host.tar.zst" | tar -C "$work/host-out" -x; t3=$(secs)
# warm-up: the first backup on an engine creates the agent image (not throughput)
docker volume create --label com.docker.compose.project=$project --label com.docker.compose.volume=warm "${project}_warm" >/dev/null
docker lifecycle -p $project --progress quiet backup warm --to "$work/warm" >/dev/null
# the engine's archive API alone (what backup reads), to a pipe that drops it
t8=$(secs); docker cp "$project-fill:/data" - > /dev/null; t9=$(secs)
docker rm -f "$project-fill" >/dev/null
t4=$(secs); docker lifecycle -p $project --progress quiet backup data --to "$work/backups" >/dev/null; t5=$(secs)
dir=$(ls -d "$work/backups/$project-"*)
t6=$(secs); docker lifecycle --progress quiet restore "$dir" --project "$project-copy" >/dev/null; t7=$(secs)
python3 - "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" "$t7" "$(du -sb "$work/host.tar.zst" | cut -f1)" "$(du -sb "$dir" | cut -f1)" "$t8" "$t9" <<'PY'
import sys
t = [float(x) for x in sys.argv[1:9]]
mb = 200
host_c, host_x, bk, rs = t[1]-t[0], t[3]-t[2], t[5]-t[4], t[7]-t[6]
print(f"host tar | zstd -1     {host_c:6.2f} s  {mb/host_c:7.1f} MB/s  ({int(sys.argv[9])>>20} MiB archive)")
print(f"docker lifecycle backup {bk:6.2f} s  {mb/bk:7.1f} MB/s  ({int(sys.argv[10])>>20} MiB backup)  ratio {host_c/bk:.2f}")
cp = float(sys.argv[12]) - float(sys.argv[11])
print(f"docker cp volume -      {cp:6.2f} s  {mb/cp:7.1f} MB/s  (the engine's archive API, no compression)")
print(f"host zstd -d | tar -x   {host_x:6.2f} s  {mb/host_x:7.1f} MB/s")
print(f"docker lifecycle restore {rs:6.2f} s  {mb/rs:7.1f} MB/s  ratio {host_x/rs:.2f}")
PY
