"""Confirmation grid after the fine sweep: top N configs that keep the rugged functions."""
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
grid = {e["label"]: e["kw"] for e in json.load(open(sys.argv[2]))}
n = int(sys.argv[4])
def med(label, prob):
    v = [r["value"] for r in rows if r["label"] == label and r["problem"] == prob]
    return statistics.median(v) if v else float("inf")
ok = [k for k in grid if med(k, "rastrigin") <= 30 and med(k, "ackley") <= 0.01]
succ = {k: sum(bool(r["success"]) for r in rows if r["label"] == k and r["problem"] == "lj13") for k in ok}
top = sorted(ok, key=lambda k: -succ[k])[:n]
print("kept rugged:", len(ok), "of", len(grid), "top:", [(k, succ[k]) for k in top])
out = [{"label": "adam", "kw": "adam", "problems": ["lj13"], "seeds": [300, 340]},
       {"label": "default", "kw": {}, "problems": ["lj13"], "seeds": [300, 340]},
       {"label": "stage2pick", "kw": {"sa_relax": 0.125, "T0": 0.3, "sa_patience": 50}, "problems": ["lj13"], "seeds": [300, 340]}]
out += [{"label": k, "kw": grid[k], "problems": ["lj13"], "seeds": [300, 340]} for k in top]
json.dump(out, open(sys.argv[3], "w"))
