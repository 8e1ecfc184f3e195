"""symreg set sweep: python symsweep.py GRID.json OUT.jsonl workers"""
import functools, json, sys, time
from multiprocessing import Pool
import torch

TARGETS = ["damped_oscillation", "nguyen1", "x_sin_x", "square_wave", "rc_charging", "spring_energy"]

def job(args):
    label, kw, target, seed = args
    torch.set_num_threads(1)
    sys.path.insert(0, "/tmp/s5")
    from research import RAzure
    from azure_sciml import fit
    from azure_sciml.problems.symreg import SymbolicRegression
    prob = SymbolicRegression(target=target)
    n = prob.steps
    sched = lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [int(0.9 * n), int(0.95 * n)], 0.1)
    if kw == "adam":
        make = functools.partial(torch.optim.Adam, lr=prob.lr, foreach=True)
    else:
        kw = dict(kw); gk = kw.pop("g", {})
        def make(params):
            o = RAzure(params, lr=prob.lr, sa_steps=int(0.9 * n), **kw)
            o.state["azure"].update(gk)
            return o
    r = fit(prob, make, seed=seed, scheduler=sched)
    st = r.optimizer.stats() if hasattr(r.optimizer, "stats") else {}
    g = r.optimizer.state.get("azure", {})
    return dict(label=label, target=target, seed=seed, rec=r.metrics["recovered"], rmse=r.metrics["test_rmse"],
                expr=r.metrics["expression"], prop=st.get("n_proposals"), acc=st.get("n_accepted"),
                k0=g.get("sa_start"), R=g.get("descent"))

if __name__ == "__main__":
    grid = json.load(open(sys.argv[1]))
    jobs = [(e["label"], e["kw"], t, s) for e in grid for t in TARGETS for s in range(*e["seeds"])]
    t0 = time.time()
    rows = []
    with Pool(int(sys.argv[3])) as pool, open(sys.argv[2], "w") as f:
        for row in pool.imap_unordered(job, jobs, chunksize=1):
            rows.append(row); f.write(json.dumps(row) + "\n"); f.flush()
    print(f"# {len(rows)} runs in {time.time() - t0:.0f} s")
    for e in grid:
        rs = [r for r in rows if r["label"] == e["label"]]
        props = sorted(r["prop"] or 0 for r in rs)
        print(e["label"], "recovered", sum(r["rec"] for r in rs), "/", len(rs), "median prop", props[len(props)//2],
              {t: int(sum(r["rec"] for r in rs if r["target"] == t)) for t in TARGETS})
