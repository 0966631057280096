"""The peer of bench/gpu-profiles.ts: the Gaussian sum D = 3, out_i = sum_j exp(-|x_i - y_j|^2) b_j
(b of dim 1), through PyTorch on the same GPU, dense (the whole M x N matrix when it fits in
--dense-gib) and blocked (rows in blocks whose M_b x N matrix is at most --block-gib). Same data
as the bench (the same linear congruential generator), float32. One untimed call, then --reps
timed calls (torch.cuda.synchronize), best kept. Prints a table, writes --out (JSON).
Usage: python3 bench/gpu/torch_peer.py [--sizes gpu|small|tiny] [--reps 3] [--out FILE]"""
import argparse, json, os, time
import torch

SIZES = {"tiny": [2000, 5000], "small": [10_000, 30_000], "gpu": [10_000, 100_000, 1_000_000]}


def lcg(n, seed):
    # The bench's generator: s = (s * 1103515245 + 12345) mod 2^31, values s / 2^31.
    out = torch.empty(n, dtype=torch.float64)
    s = seed
    vals = []
    for _ in range(n):
        s = (s * 1103515245 + 12345) % 2147483648
        vals.append(s / 2147483648)
    out[:] = torch.tensor(vals, dtype=torch.float64)
    return out.float()


def data(n, dev):
    # Cached: the pure-Python generator takes a while at 1e6 points.
    key = f"/tmp/kf-torch-peer-{n}.pt"
    if os.path.exists(key):
        x, y, b = torch.load(key)
    else:
        x, y, b = lcg(3 * n, 1).view(n, 3), lcg(3 * n, 2).view(n, 3), lcg(n, 3).view(n, 1)
        torch.save((x, y, b), key)
    return x.to(dev), y.to(dev), b.to(dev)


def dense(x, y, b):
    return torch.exp(-torch.cdist(x, y).square()) @ b


def blocked(x, y, b, rows):
    return torch.cat([dense(x[i : i + rows], y, b) for i in range(0, x.shape[0], rows)])


def timed(fn, reps, sync):
    out = fn()
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="gpu")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dense-gib", type=float, default=40.0)
    ap.add_argument("--block-gib", type=float, default=2.0)
    ap.add_argument("--out", default="bench/results/torch-peer.json")
    a = ap.parse_args()
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    print(f"torch {torch.__version__} on {name}")
    rows = []
    for n in SIZES[a.sizes]:
        x, y, b = data(n, dev)
        block = max(1, int(a.block_gib * 2**30 / (4 * n)))
        t_b, o_b = timed(lambda: blocked(x, y, b, block), a.reps, sync)
        row = {"case": "Gaussian sum D=3", "M=N": n, "device": name, "blocked s": round(t_b, 4), "blocked G pairs/s": round(n * n / t_b / 1e9, 2), "block rows": block}
        if 4 * n * n <= a.dense_gib * 2**30:
            try:
                t_d, o_d = timed(lambda: dense(x, y, b), a.reps, sync)
                row.update({"dense s": round(t_d, 4), "dense G pairs/s": round(n * n / t_d / 1e9, 2), "dense vs blocked max rel diff": float(((o_d - o_b).abs() / o_b.abs()).max())})
            except torch.cuda.OutOfMemoryError:
                row["dense s"] = "out of memory"
            if cuda:
                torch.cuda.empty_cache()
        else:
            row["dense s"] = f"matrix {4 * n * n / 2**30:.0f} GiB > {a.dense_gib} GiB"
        rows.append(row)
        print(json.dumps(row))
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print("\n| " + " | ".join(cols) + " |\n| " + " | ".join("---" for _ in cols) + " |")
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in cols) + " |")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"bench": "torch-peer", "sizes": a.sizes, "device": name, "torch": torch.__version__, "rows": rows}, f, indent=2)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
