"""Research harness (session 3): python h.py PROBLEM SEEDS JSON_KWARGS [label]"""
import json, sys, time, functools, statistics, torch
torch.set_num_threads(1)
from azure_sciml.train import fit
from azure_sciml.optim import Azure
from azure_sciml.problems.energy import LennardJones
from azure_sciml.problems.rugged import RuggedFunction

PROBS = {
    "lj13": lambda: LennardJones(n_atoms=13),
    "lj19": lambda: LennardJones(n_atoms=19),
    "rastrigin": lambda: RuggedFunction(name="rastrigin", dim=20),
    "ackley": lambda: RuggedFunction(name="ackley", dim=20),
}

def main():
    pname, seeds, kw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    label = sys.argv[4] if len(sys.argv) > 4 else sys.argv[3]
    a, b = map(int, seeds.split("-"))
    prob = PROBS[pname]()
    n = prob.steps
    sched = lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [int(0.9 * n), int(0.95 * n)], 0.1)
    if kw == "adam":
        make = functools.partial(torch.optim.Adam, lr=prob.lr, foreach=True)
    else:
        make = functools.partial(Azure, lr=prob.lr, sa_steps=int(0.9 * n), **kw)
    rows = []
    t = time.time()
    for s in range(a, b + 1):
        r = fit(prob, make, seed=s, scheduler=sched)
        st = r.optimizer.stats() if hasattr(r.optimizer, "stats") else {}
        g = r.optimizer.state.get("azure", {}) if kw != "adam" else {}
        m = r.metrics
        rows.append(dict(seed=s, gap=m.get("gap"), value=m.get("value"), success=m.get("success"),
                         status=r.status, K=g.get("sa_interval"), k0=g.get("sa_start"),
                         prop=st.get("n_proposals"), acc=st.get("n_accepted"),
                         nonfin=st.get("n_nonfinite"), badgrad=g.get("n_bad_grad")))
    key = "gap" if pname.startswith("lj") else "value"
    vals = [r[key] for r in rows]
    out = dict(problem=pname, label=label, seeds=seeds, kw=kw, median=statistics.median(vals),
               succ=sum(r["success"] or 0 for r in rows) if key == "gap" else None,
               diverged=sum(r["status"] != "ok" for r in rows), secs=round(time.time() - t, 1),
               rows=rows)
    with open("/tmp/r7/results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")
    print(f"{pname:9s} {seeds:6s} {label:40s} median={out['median']:.4g} succ={out['succ']} "
          f"div={out['diverged']} bad={sum(r['badgrad'] or 0 for r in rows)} K={[r['K'] for r in rows]} k0={[r['k0'] for r in rows]} "
          f"{out['secs']}s", flush=True)

main()
