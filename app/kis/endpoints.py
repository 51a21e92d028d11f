"""KIS REST facts (docs/kis.md §1, §2, §4, §5.1): hosts, paths, tr_ids, page sizes, default limits."""
from __future__ import annotations

from dataclasses import dataclass

BASE_URLS = {
    "real": "https://openapi.koreainvestment.com:9443",
    "paper": "https://openapivts.koreainvestment.com:29443",
}

#: Requests per second per app key (official notice of 2026-04: 18 real, 1 paper).
DEFAULT_RATE = {"real": 18.0, "paper": 1.0}

#: Realtime websocket hosts (plain ws://); clients connect to ``{host}/tryitout``.
WS_URLS = {
    "real": "ws://ops.koreainvestment.com:21000",
    "paper": "ws://ops.koreainvestment.com:31000",
}
WS_PATH = "/tryitout"
#: Registrations per websocket session, counted over (tr_id, tr_key); one session per app key.
WS_MAX_SUBSCRIPTIONS = 41
#: A websocket approval key is good for a day; it is asked for again after this long.
APPROVAL_LIFETIME_S = 86400.0

TOKEN_PATH = "/oauth2/tokenP"
REVOKE_PATH = "/oauth2/revokeP"
APPROVAL_PATH = "/oauth2/Approval"

#: KIS refuses a second token issuance within a minute (403 EGW00133).
TOKEN_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Endpoint:
    path: str
    tr_id: str
    max_rows: int = 0
    real_only: bool = False


_Q = "/uapi/domestic-stock/v1/quotations"
INQUIRE_PRICE = Endpoint(f"{_Q}/inquire-price", "FHKST01010100")
DAILY_CHART = Endpoint(f"{_Q}/inquire-daily-itemchartprice", "FHKST03010100", max_rows=100)
MINUTE_CHART = Endpoint(f"{_Q}/inquire-time-itemchartprice", "FHKST03010200", max_rows=30)
DAILY_PRICE = Endpoint(f"{_Q}/inquire-daily-price", "FHKST01010400", max_rows=30)
PAST_MINUTE_CHART = Endpoint(
    f"{_Q}/inquire-time-dailychartprice", "FHKST03010230", max_rows=120, real_only=True
)

SEARCH_INFO = Endpoint(f"{_Q}/search-info", "CTPF1604R")
CHK_HOLIDAY = Endpoint(f"{_Q}/chk-holiday", "CTCA0903R", real_only=True)

PERIODS = ("D", "W", "M", "Y")
MARKETS = ("J", "NX", "UN")

#: FID_ORG_ADJ_PRC of the chart endpoint: 0 = adjusted (수정주가), 1 = raw (원주가).
CHART_ADJ = {True: "0", False: "1"}
#: FID_ORG_ADJ_PRC of inquire-daily-price is documented both ways (docs/kis.md §4(d));
#: we follow the current official sample and the portal: 1 = adjusted, 0 = raw.
DAILY_PRICE_ADJ = {True: "1", False: "0"}
