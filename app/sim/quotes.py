"""Snapshot payloads (all values strings, docs/kis.md §3.3): inquire-price ``output`` and chart ``output1``."""
from __future__ import annotations

import numpy as np

from app.sim import process
from app.sim.market import Market

SECTOR_NAMES = ["전기.전자", "화학", "의약품", "건설업", "금융업", "서비스업", "운수장비", "철강.금속", "음식료품", "통신업"]
FACE_VALUES = (100, 500, 1000, 5000)


def fundamentals(m: Market, i: int) -> dict[str, float]:
    rng = np.random.default_rng([m.cfg.seed, 31, i])
    first = float(m.hist.close[i, 0])
    return {"per": rng.uniform(5, 40), "pbr": rng.uniform(0.4, 3.0), "eps": first / rng.uniform(5, 40),
            "bps": first / rng.uniform(0.4, 3.0), "fcam": FACE_VALUES[int(rng.integers(len(FACE_VALUES)))],
            "frgn": rng.uniform(1, 55), "loan": rng.uniform(0, 2)}


def snapshot(m: Market, i: int) -> dict[str, float]:
    """Numbers of the current-price snapshot; before the open the price is the previous close."""
    v = m.day_row
    if m.state == "pre-open":
        prev = v(i, -1)
        base = prev["close"]
        cur = {"open": 0.0, "high": 0.0, "low": 0.0, "close": base, "volume": 0.0, "value": 0.0}
        up, lo = process.limits(np.array([base]), m.today, m.params.kosdaq[i:i + 1])
        up, lo = float(up[0]), float(lo[0])
    else:
        cur = v(i, -1)
        base = cur["base"]
        prev = v(i, -2) if m.visible_days() > 1 else dict(cur, volume=0.0)
        up, lo = m.limits(i, -1)
    price = cur["close"]
    sign = 1 if price >= up else 4 if price <= lo else 2 if price > base else 5 if price < base else 3
    return dict(price=price, open=cur["open"], high=cur["high"], low=cur["low"], volume=cur["volume"],
                value=cur["value"], base=base, up=up, lo=lo, sign=sign, prev=prev)


def _pct(a: float, b: float) -> str:
    return f"{(a / b * 100.0 if b else 0.0):.2f}"


def _extreme(m: Market, i: int, n_days: int | None, since: int | None, high: bool) -> tuple[float, str]:
    s = m.series(m.symbols[i], "D", False)
    sel = slice(-n_days, None) if n_days else slice(int(np.searchsorted(s.dates, since)), None)
    arr, dates = (s.high if high else s.low)[sel], s.dates[sel]
    arr = np.where(arr > 0, arr, np.nan)
    if not len(arr) or np.isnan(arr).all():
        return 0.0, ""
    k = int(np.nanargmax(arr) if high else np.nanargmin(arr))
    return float(arr[k]), str(int(dates[k]))


def inquire_price_output(m: Market, symbol: str) -> dict[str, str]:
    i = m.index(symbol)
    q, f = snapshot(m, i), fundamentals(m, i)
    p, base, prev = q["price"], q["base"], q["prev"]
    shares = float(m.params.shares[i])
    vwap = q["value"] / q["volume"] if q["volume"] else 0.0
    pv = (prev["high"] + prev["low"] + prev["close"]) / 3
    rng_ = prev["high"] - prev["low"]
    out = {
        "iscd_stat_cls_code": "55", "marg_rate": "20.00",
        "rprs_mrkt_kor_name": "KOSDAQ" if m.kosdaq[symbol] else "KOSPI",
        "bstp_kor_isnm": SECTOR_NAMES[int(m.params.sector[i]) % len(SECTOR_NAMES)],
        "temp_stop_yn": "N", "oprc_rang_cont_yn": "N", "clpr_rang_cont_yn": "N", "crdt_able_yn": "Y",
        "grmn_rate_cls_code": "40", "elw_pblc_yn": "N",
        "stck_prpr": f"{p:.0f}", "prdy_vrss": f"{p - base:.0f}", "prdy_vrss_sign": str(q["sign"]),
        "prdy_ctrt": _pct(p - base, base), "acml_tr_pbmn": f"{q['value']:.0f}", "acml_vol": f"{q['volume']:.0f}",
        "prdy_vrss_vol_rate": _pct(q["volume"], prev["volume"]),
        "stck_oprc": f"{q['open']:.0f}", "stck_hgpr": f"{q['high']:.0f}", "stck_lwpr": f"{q['low']:.0f}",
        "stck_mxpr": f"{q['up']:.0f}", "stck_llam": f"{q['lo']:.0f}", "stck_sdpr": f"{base:.0f}",
        "wghn_avrg_stck_prc": f"{vwap:.2f}", "hts_frgn_ehrt": f"{f['frgn']:.2f}", "frgn_ntby_qty": "0",
        "pgtr_ntby_qty": "0",
        "pvt_scnd_dmrs_prc": f"{pv + rng_:.0f}", "pvt_frst_dmrs_prc": f"{2 * pv - prev['low']:.0f}",
        "pvt_pont_val": f"{pv:.0f}", "pvt_frst_dmsp_prc": f"{2 * pv - prev['high']:.0f}",
        "pvt_scnd_dmsp_prc": f"{pv - rng_:.0f}", "dmrs_val": f"{(pv + prev['high']) / 2:.0f}",
        "dmsp_val": f"{(pv + prev['low']) / 2:.0f}",
        "cpfn": f"{shares * f['fcam'] / 1e8:.0f}", "rstc_wdth_prc": f"{q['up'] - base:.0f}",
        "stck_fcam": str(f["fcam"]), "stck_sspr": f"{m_round(m, i, p * 0.8):.0f}",
        "aspr_unit": str(m.tick_size(i, p)), "hts_deal_qty_unit_val": "1", "lstn_stcn": f"{shares:.0f}",
        "hts_avls": f"{shares * p / 1e8:.0f}", "per": f"{f['per']:.2f}", "pbr": f"{f['pbr']:.2f}",
        "stac_month": "12", "vol_tnrt": f"{q['volume'] / shares * 100:.2f}", "eps": f"{f['eps']:.2f}",
        "bps": f"{f['bps']:.2f}",
    }
    today = m.today.year * 10000 + m.today.month * 100 + m.today.day
    for key, kw in (("d250", dict(n_days=250, since=None)), ("dryy", dict(n_days=None, since=today // 10000 * 10000)),
                    ("w52", dict(n_days=None, since=today - 10000))):
        hi, hi_d = _extreme(m, i, high=True, **kw)
        lo, lo_d = _extreme(m, i, high=False, **kw)
        if key == "dryy":
            out.update({"stck_dryy_hgpr": f"{hi:.0f}", "dryy_hgpr_vrss_prpr_rate": _pct(p - hi, hi), "dryy_hgpr_date": hi_d,
                        "stck_dryy_lwpr": f"{lo:.0f}", "dryy_lwpr_vrss_prpr_rate": _pct(p - lo, lo), "dryy_lwpr_date": lo_d})
        else:
            rate = "vrss_prpr_rate" if key == "d250" else "vrss_prpr_ctrt"
            out.update({f"{key}_hgpr": f"{hi:.0f}", f"{key}_hgpr_date": hi_d, f"{key}_hgpr_{rate}": _pct(p - hi, hi),
                        f"{key}_lwpr": f"{lo:.0f}", f"{key}_lwpr_date": lo_d, f"{key}_lwpr_{rate}": _pct(p - lo, lo)})
    out.update({
        "whol_loan_rmnd_rate": f"{f['loan']:.2f}", "ssts_yn": "Y", "stck_shrn_iscd": symbol,
        "fcam_cnnm": f"{f['fcam']:,}", "cpfn_cnnm": f"{shares * f['fcam'] / 1e8:,.0f} 억",
        "frgn_hldn_qty": f"{shares * f['frgn'] / 100:.0f}", "vi_cls_code": "N", "ovtm_vi_cls_code": "N",
        "last_ssts_cntg_qty": "0", "invt_caful_yn": "N", "mrkt_warn_cls_code": "00", "short_over_yn": "N",
        "sltr_yn": "N", "mang_issu_cls_code": "N",
    })
    return out


def m_round(m: Market, i: int, price: float) -> float:
    """Floor a price to the symbol's tick (the collateral price sits on the grid)."""
    tick = m.tick_size(i, price)
    return price // tick * tick


def chart_output1(m: Market, symbol: str) -> dict[str, str]:
    """output1 of the period chart; the last key is spelled as the live server spells it."""
    i = m.index(symbol)
    q, f = snapshot(m, i), fundamentals(m, i)
    p, base, prev = q["price"], q["base"], q["prev"]
    shares = float(m.params.shares[i])
    tick = m.tick_size(i, p)
    return {
        "prdy_vrss": f"{p - base:.0f}", "prdy_vrss_sign": str(q["sign"]), "prdy_ctrt": _pct(p - base, base),
        "stck_prdy_clpr": f"{base:.0f}", "acml_vol": f"{q['volume']:.0f}", "acml_tr_pbmn": f"{q['value']:.0f}",
        "hts_kor_isnm": m.names[symbol], "stck_prpr": f"{p:.0f}", "stck_shrn_iscd": symbol,
        "prdy_vol": f"{prev['volume']:.0f}", "stck_mxpr": f"{q['up']:.0f}", "stck_llam": f"{q['lo']:.0f}",
        "stck_oprc": f"{q['open']:.0f}", "stck_hgpr": f"{q['high']:.0f}", "stck_lwpr": f"{q['low']:.0f}",
        "stck_prdy_oprc": f"{prev['open']:.0f}", "stck_prdy_hgpr": f"{prev['high']:.0f}",
        "stck_prdy_lwpr": f"{prev['low']:.0f}", "askp": f"{min(p + tick, q['up']):.0f}", "bidp": f"{p:.0f}",
        "prdy_vrss_vol": f"{q['volume'] - prev['volume']:.0f}", "vol_tnrt": f"{q['volume'] / shares * 100:.2f}",
        "stck_fcam": str(f["fcam"]), "lstn_stcn": f"{shares:.0f}", "cpfn": f"{shares * f['fcam'] / 1e8:.0f}",
        "hts_avls": f"{shares * p / 1e8:.0f}", "per": f"{f['per']:.2f}", "eps": f"{f['eps']:.2f}",
        "pbr": f"{f['pbr']:.2f}", "itewhol_loan_rmnd_ratem name": f"{f['loan']:.2f}",
    }


def minute_output1(m: Market, symbol: str) -> dict[str, str]:
    full = chart_output1(m, symbol)
    keys = ("prdy_vrss", "prdy_vrss_sign", "prdy_ctrt", "stck_prdy_clpr", "acml_vol", "acml_tr_pbmn", "hts_kor_isnm", "stck_prpr")
    return {k: full[k] for k in keys}


def unknown_output1(keys: list[str]) -> dict[str, str]:
    """What the live server sends for a code it does not list: zeros (PYKIS reads stck_prpr "0" as not found)."""
    return {k: ("" if k in ("hts_kor_isnm", "stck_shrn_iscd") else "0") for k in keys}
