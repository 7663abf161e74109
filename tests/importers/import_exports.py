"""Small Plausible and Fathom exports written from known numbers, and a multipart body."""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

VISITORS_HEADER = "date,visitors,pageviews,bounces,visits,visit_duration"
SOURCES_HEADER = (
    "date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,"
    "pageviews,visitors,visits,visit_duration,bounces"
)
PAGES_HEADER = {
    "older": "date,hostname,page,visitors,pageviews,exits,time_on_page",
    "newer": "date,hostname,page,visits,visitors,pageviews,scroll_depth,pageleave_visitors",
    "newest": "date,hostname,page,visits,visitors,pageviews,total_scroll_depth,"
    "total_scroll_depth_visits,total_time_on_page,total_time_on_page_visits",
}
BROWSERS_HEADER = "date,browser,browser_version,visitors,visits,visit_duration,bounces,pageviews"
LOCATIONS_HEADER = "date,country,region,city,visitors,visits,visit_duration,bounces,pageviews"


def stamp(d: date) -> str:
    return d.strftime("%Y%m%d")


def days(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


@dataclass
class Plausible:
    """A Plausible export over `days`, with the numbers it holds."""

    days: list[date]
    pages: str = "newer"
    more_pages: int = 0  # pages besides / and /blog, each with 1 view a day
    files: dict[str, str] = field(default_factory=dict)
    visitors: dict[date, tuple[int, int, int, int, int]] = field(default_factory=dict)
    page_views: dict[tuple[date, str], int] = field(default_factory=dict)
    browsers: dict[tuple[date, str], int] = field(default_factory=dict)

    def build(self) -> Plausible:
        first, last = self.days[0], self.days[-1]
        suffix = f"{stamp(first)}_{stamp(last)}.csv"
        visitors, sources, pages, browsers, locations = [], [], [], [], []
        for i, d in enumerate(self.days):
            v = (10 + i % 7, 25 + i % 11, 3 + i % 3, 12 + i % 5, 600 + i)
            self.visitors[d] = v
            visitors.append(f"{d},{v[0]},{v[1]},{v[2]},{v[3]},{v[4]}")
            sources.append(f"{d},Google,,,,,,,9,{4 + i % 2},5,100,1")
            sources.append(f"{d},,,news,email,spring,,,3,3,3,0,0")
            extra = [(f"/p{k}", 1) for k in range(self.more_pages)]
            for path, views in (("/", 10 + i % 4), ("/blog", 5), *extra):
                self.page_views[(d, path)] = views
                pages.append(self._page(d, path, views))
            for name, version, people in (
                ("Chrome", "120", 4),
                ("Chrome", "121", 2),
                ("Firefox", "3", 1),
            ):
                self.browsers[(d, name)] = self.browsers.get((d, name), 0) + people
                browsers.append(f"{d},{name},{version},{people},{people},60,0,{people}")
            locations.append(f"{d},DE,DE-BE,2950159,5,5,50,1,7")
        self.files = {
            f"imported_visitors_{suffix}": "\n".join([VISITORS_HEADER, *visitors]) + "\n",
            f"imported_sources_{suffix}": "\n".join([SOURCES_HEADER, *sources]) + "\n",
            f"imported_pages_{suffix}": "\n".join([PAGES_HEADER[self.pages], *pages]) + "\n",
            f"imported_browsers_{suffix}": "\n".join([BROWSERS_HEADER, *browsers]) + "\n",
            f"imported_locations_{suffix}": "\n".join([LOCATIONS_HEADER, *locations]) + "\n",
        }
        return self

    def _page(self, d: date, path: str, views: int) -> str:
        if self.pages == "older":
            return f"{d},example.com,{path},3,{views},1,120"
        if self.pages == "newer":
            return f"{d},example.com,{path},4,3,{views},\\N,2"
        return f"{d},example.com,{path},4,3,{views},0,0,300,2"

    def zip(self, extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> bytes:
        return zip_of({**{k: v for k, v in self.files.items() if k not in drop}, **(extra or {})})


FATHOM_FILES = {
    "Summary.csv": 'Metric,Value\nPeople,70\nPageviews,140\n"Avg Time on Site (seconds)",30\n'
    '"Bounce Rate (%)",50\n,\n"Export Date Range","2026-09-02 00:00:00 to 2026-09-08 '
    '16:02:04 (UTC)"\n"Filters Applied",0\n',
    "Pages.csv": 'Page,Visitors,Pageviews,"Bounce Rate (%)","Avg Time (seconds)"\n'
    "/,50,100,40,119\n/about,23,40,100,5\n",
    "Entry_Pages.csv": '"Entry Page",Visitors,Pageviews\n/,60,100\n/about,10,40\n',
    "Exit_Pages.csv": '"Exit Page",Visitors,Pageviews\n/,45,90\n/about,25,50\n',
    "Referrers.csv": 'Referrer,Visitors,Pageviews,"Bounce Rate (%)"\n"Direct / Unknown",40,80,50\n'
    "news.ycombinator.com,30,60,50\n",
    "Sources.csv": "Source,Visitors\nDirect,40\nHacker News,30\n",
    "UTM_Source.csv": '"UTM Source",Visitors,Pageviews\nnewsletter,9,12\n',
    "Countries.csv": 'Country,Visitors\n"United States",40\nGermany,20\nRussia,10\n',
    "Regions.csv": 'Region,Country,Visitors\nCalifornia,"United States",30\nBerlin,Germany,20\n',
    "Cities.csv": 'City,Region,Country,Visitors\n"Los Angeles",California,"United States",30\n',
    "Device_Types.csv": '"Device Type",Visitors\nDesktop,43\nPhone,20\nTablet,7\n',
    "Browsers.csv": "Browser,Visitors\nChrome,50\nSafari,20\n",
    "Operating_Systems.csv": '"Operating System",Visitors\nWindows,30\niOS,20\n"OS X",20\n',
    "Events.csv": '"Event Name","Unique Completions",Completions,"Conversion Rate (%)",Value\n'
    "signup,5,6,7.1,0\n",
}


def fathom_zip(changes: dict[str, str] | None = None, folder: str = "Dashboard_Export/") -> bytes:
    files = {**FATHOM_FILES, **(changes or {})}
    return zip_of({folder + name: text for name, text in files.items()})


def zip_of(files: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def bomb(size: int = 64 << 20) -> bytes:
    """A zip whose one CSV unpacks to `size` bytes of zeros from a few kilobytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        info = zipfile.ZipInfo("imported_visitors_20240101_20240101.csv")
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w") as f:
            f.write(VISITORS_HEADER.encode() + b"\n")
            chunk = b"0" * (1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
    return buf.getvalue()


def multipart(
    fields: dict[str, str], file: bytes | None, name: str = "export.zip"
) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data upload, as a browser or SDK sends it."""
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    if file is not None:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        )
        parts.append(head.encode() + file + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)
