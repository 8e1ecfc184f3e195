import shlex, subprocess, sys, os
from concurrent.futures import ThreadPoolExecutor
env = dict(os.environ, PYTHONPATH="/work/wt7", PYTHONWARNINGS="ignore")
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip() and not l.startswith("#")]
def run(l):
    r = subprocess.run(["/work/main/.venv/bin/python", "/tmp/r7/h.py", *shlex.split(l)], env=env,
                       capture_output=True, text=True, cwd="/work/wt7")
    return r.stdout + (r.stderr[-2000:] if r.returncode else "")
with ThreadPoolExecutor(2) as ex:
    for out in ex.map(run, lines):
        print(out, end="", flush=True)
