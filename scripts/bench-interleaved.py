#!/usr/bin/env python3
"""Times lint, plan and config --services of a compose file with two builds of the plugin,
interleaved (each round runs every command once), so both see the same machine load.

  scripts/bench-interleaved.py COMPOSE_FILE BEFORE_DOCKER_CONFIG AFTER_DOCKER_CONFIG [ROUNDS]

Each DOCKER_CONFIG holds a cli-plugins/docker-lifecycle. Prints the median wall time
(p10, p90) and the median CPU (user + system of the whole process tree, the docker CLI
included) per command. Used for docs/benchmarks.md, section 2b.
"""
import os
import resource
import statistics
import subprocess
import sys
import time

compose_file, before, after = sys.argv[1:4]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 20
warmup = 2
base = ["docker", "lifecycle", "-f", compose_file]
commands = {}
for name, args in [("lint", ["lint"]), ("plan", ["plan"]), ("config", ["config", "--services"])]:
    commands[name + " before"] = (before, base + args)
    commands[name + " after"] = (after, base + args)
commands["version after"] = (after, ["docker", "lifecycle", "version"])

wall = {k: [] for k in commands}
cpu = {k: [] for k in commands}
for i in range(rounds + warmup):
    for name, (config, argv) in commands.items():
        env = dict(os.environ, DOCKER_CONFIG=config)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        t1 = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i >= warmup:
            wall[name].append((t1 - t0) * 1000)
            cpu[name].append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000)
for name in commands:
    w = sorted(wall[name])
    print(f"{name:15s} wall median {statistics.median(w):6.1f} ms (p10 {w[len(w) // 10]:6.1f}, "
          f"p90 {w[9 * len(w) // 10]:6.1f})  CPU median {statistics.median(cpu[name]):6.1f} ms")
with open("/proc/loadavg") as f:
    print("load average:", " ".join(f.read().split()[:3]))
