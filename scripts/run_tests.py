"""Run make targets as the stages of `make test`, and summarise them.

Each stage is timed, and every stage runs even when an earlier one failed,
so that one run reports everything; only the page check (`browser`) is
skipped when the book did not build. Exits 1 if any stage failed.

Usage: python scripts/run_tests.py unit nbval book browser labcheck
"""
import os
import subprocess
import sys
import time

NEEDS = {"browser": "book"}   # stage -> the stage it looks at


def main(stages):
    make = os.environ.get("MAKE", "make")
    result, took = {}, {}
    for stage in stages:
        if result.get(NEEDS.get(stage)) == "FAILED":
            result[stage], took[stage] = f"skipped ({NEEDS[stage]} failed)", "-"
            continue
        print(f"\n=== make {stage}", flush=True)
        start = time.perf_counter()
        failed = subprocess.run([make, "--no-print-directory", stage]).returncode
        result[stage] = "FAILED" if failed else "passed"
        took[stage] = f"{time.perf_counter() - start:.1f} s"
        print(f"=== make {stage}: {result[stage]} in {took[stage]}", flush=True)

    print(f"\n{'stage':<10} {'result':<22} time")
    for stage in stages:
        print(f"{stage:<10} {result[stage]:<22} {took[stage]}")
    failed = [stage for stage in stages if result[stage] == "FAILED"]
    print("make test: " + (f"FAILED ({', '.join(failed)})" if failed
                           else "all stages passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
