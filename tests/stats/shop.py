"""A small hand-built day of traffic used by the event, tag, session, option and goal tests.

2024-03-10 (UTC), five visitors, six sessions:
  v1/s1  "/" 10:00:00 (+ event signup {plan: pro, amount: 10}), "/a" 10:00:09 [tag author=alice]
         country de
  v2/s1  "/" 11:00:00 [tags author=bob, kind=post], "/x" 11:01:00; hostname blog.example.com,
         country us
  v3/s1  "/p" 12:00:00 (+ event signup {plan: free, amount: 5})
  v4/s1  "/" 13:00:00 (+ event download)
  v4/s2  "/a" 14:00:00 (bounced: no event)
  v5/s1  "/" 15:00:00 (+ event signup {plan: pro, amount: 10})
Totals: visitors 5, sessions 6, views 8, bounces 1 (v4/s2). Events move the session time by 1 ms.
"""

from __future__ import annotations

from pathlib import Path

from segment_rows import SiteData

DAY = "2024-03-10"


def build_shop(site: SiteData) -> Path:
    pro = ("signup", {"plan": "pro", "amount": "10"})
    site.visit(1, 1, [(f"{DAY} 10:00:00", "/"), (f"{DAY} 10:00:09", "/a")], events={0: pro},
               tags={1: {"author": "alice"}}, country_code="de")  # fmt: skip
    site.visit(2, 1, [(f"{DAY} 11:00:00", "/"), (f"{DAY} 11:01:00", "/x")],
               tags={0: {"author": "bob", "kind": "post"}}, hostname="blog.example.com",
               country_code="us")  # fmt: skip
    site.visit(
        3, 1, [(f"{DAY} 12:00:00", "/p")], events={0: ("signup", {"plan": "free", "amount": "5"})}
    )
    site.visit(4, 1, [(f"{DAY} 13:00:00", "/")], events={0: ("download", {})})
    site.visit(4, 2, [(f"{DAY} 14:00:00", "/a")])
    site.visit(5, 1, [(f"{DAY} 15:00:00", "/")], events={0: pro})
    site.write()
    return site.data_dir
