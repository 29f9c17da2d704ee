#!/usr/bin/env python3
"""Writes the load-balancer outage of issue 12 (deterministic): 30 minutes of traffic, 200
requests a second over 7 URIs, the FPM pool exhausted throughout so that half of the requests
fail with 502 and an EAGAIN line each in the error log.

    benches/gen_lb.py DIR one        # every request from one address (a load balancer, no real_ip)
    benches/gen_lb.py DIR distinct   # the same requests, each from its own address

Both directories hold the same requests and lines but for the client address, so their
analysis must take about the same time (benches/lb.sh measures the ratio).
"""
import os, random, sys

out, mode = sys.argv[1], sys.argv[2]
seconds, per_sec = int(os.environ.get("SECONDS_", "1800")), int(os.environ.get("RATE", "200"))
rng = random.Random(12)
uris = ["/health", "/", "/cart", "/api/items", "/search?q=shoes", "/login", "/product/42"]
os.makedirs(out, exist_ok=True)
t0 = 1_795_183_200  # 2026-11-20T14:00:00Z
months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
import time as _t
with open(f"{out}/access.log", "w") as acc, open(f"{out}/error.log", "w") as err:
    n = 0
    for s in range(seconds):
        tm = _t.gmtime(t0 + s)
        local = f"{tm.tm_mday:02d}/{months[tm.tm_mon - 1]}/{tm.tm_year}:{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} +0000"
        stamp = f"{tm.tm_year}/{tm.tm_mon:02d}/{tm.tm_mday:02d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
        for _ in range(per_sec):
            n += 1
            client = "10.1.1.1" if mode == "one" else f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
            uri = uris[rng.randrange(len(uris))]
            if rng.random() < 0.5:
                acc.write(f'{client} - - [{local}] "GET {uri} HTTP/1.1" 502 157 "-" "Mozilla/5.0" '
                          f'rt=0.000 ua="unix:/run/php/php8.2-fpm.sock" us="502"\n')
                err.write(f'{stamp} [error] 812#812: *{n} connect() to unix:/run/php/php8.2-fpm.sock failed '
                          f'(11: Resource temporarily unavailable) while connecting to upstream, client: {client}, '
                          f'server: shop.test, request: "GET {uri} HTTP/1.1", '
                          f'upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "shop.test"\n')
            else:
                rt = rng.randrange(5, 400) / 1000
                acc.write(f'{client} - - [{local}] "GET {uri} HTTP/1.1" 200 5120 "-" "Mozilla/5.0" '
                          f'rt={rt:.3f} ua="unix:/run/php/php8.2-fpm.sock" us="200"\n')
print(f"wrote {n} requests to {out}")
