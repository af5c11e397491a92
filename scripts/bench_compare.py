#!/usr/bin/env python3
"""Before/after comparison of crypto-core's criterion benches, in one run.

Usage: scripts/bench_compare.py BEFORE_TARGET AFTER_TARGET BENCHES ROUNDS [-- CRITERION ARGS]

BEFORE_TARGET and AFTER_TARGET are cargo target folders in which the two versions' bench
binaries were built (`CARGO_TARGET_DIR=DIR cargo bench -p crypto-core --all-features
--benches --no-run` in a worktree of each version). BENCHES is a comma-separated list
(`ratchet,vs_vodozemac,x25519,attachment`). Each round runs every bench of the "before"
build, then the same bench of the "after" build, so both see the same machine; the table
gives each criterion benchmark's medians and the after/before ratio of every round.
"""
import glob, json, os, statistics, subprocess, sys, tempfile

def binary(target, name):
    found = [p for p in glob.glob(f"{target}/release/deps/{name}-*")
             if os.access(p, os.X_OK) and not p.endswith(".d")]
    if not found:
        sys.exit(f"no bench binary `{name}` in {target}/release/deps")
    return max(found, key=os.path.getmtime)

def medians(home):
    out = {}
    for p in glob.glob(f"{home}/**/new/estimates.json", recursive=True):
        key = os.path.relpath(os.path.dirname(os.path.dirname(p)), home)
        with open(p) as f:
            out[key] = json.load(f)["median"]["point_estimate"]
    return out

def main():
    args = sys.argv[1:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[:args.index("--")] if "--" in args else args
    if len(args) != 4:
        sys.exit(__doc__)
    builds = {"before": args[0], "after": args[1]}
    benches, rounds = args[2].split(","), int(args[3])
    package = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crypto-core")
    work = tempfile.mkdtemp(prefix="bench-compare-")
    results = {b: [] for b in builds}
    for r in range(rounds):
        for bench in benches:
            for build, target in builds.items():
                home = os.path.join(work, f"{build}-{r}-{bench}")
                env = dict(os.environ, CARGO_TARGET_DIR=target, CRITERION_HOME=home)
                p = subprocess.run([binary(target, bench), "--bench", *extra], env=env,
                                   cwd=package, capture_output=True, text=True)
                if p.returncode != 0:
                    sys.exit(f"{bench} ({build}) failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
                with open(os.path.join(work, f"{build}-{r}-{bench}.txt"), "w") as f:
                    f.write(p.stdout)
                results[build].append(medians(home))
                print(f"round {r + 1}: {bench} {build} done", flush=True)
    keys = sorted(set().union(*results["before"]))
    print(f"\n{'benchmark':45} {'before':>12} {'after':>12}  after/before per round")
    for k in keys:
        b = [m[k] for m in results["before"] if k in m]
        a = [m[k] for m in results["after"] if k in m]
        ratios = [x / y for x, y in zip(a, b)]
        print(f"{k:45} {statistics.median(b):12.1f} {statistics.median(a):12.1f}  "
              + " ".join(f"{x:.3f}" for x in ratios))
    print(f"\nbench outputs (ratio tables, vodozemac and x25519 interleaved runs): {work}")

if __name__ == "__main__":
    main()
