"""The study's key findings: what the report's first screen and the end of `make run` say, a
sentence each, every number in it computed from the verdicts (verdicts.parquet):

  - where the seed's claims hold: how many hold in every setting they are judged in (each
    setting "supported"), in some (a setting supported or mixed), in none;
  - each claim a family names in Family.findings (the claims that answer its question): its key
    number at its primary setting (base.primary_setting: the whole run, the seed's minibatch
    regime, the final val loss, the usual lrs), and its verdicts counted over its settings.

The claims stage writes them as tables.KEY_FINDINGS_FILE beside verdicts.parquet: a list of
{"claims": [ids], "text": sentence}; the report links each claim id to its evidence.
"""

from __future__ import annotations

import pandas as pd

from optimizer_dynamics.claims.base import (SETTING_AXES, VERDICT_WORDS, VERDICTS, Family, primary_setting,
                                            spoken_list)

SEED_SOURCE = "the seed"  # a claim whose source starts so is one of the seed's


def key_findings(verdicts: pd.DataFrame, families: list[Family]) -> list[dict]:
    findings = [where_the_seed_holds(verdicts)]
    for family in families:
        findings += [claim_finding(verdicts[verdicts["id"] == claim_id]) for claim_id in family.findings
                     if (verdicts["id"] == claim_id).any()]
    return [finding for finding in findings if finding]


def where_the_seed_holds(verdicts: pd.DataFrame) -> dict | None:
    seed = verdicts[verdicts["source"].str.startswith(SEED_SOURCE)]
    if seed.empty:
        return None
    buckets = {"every": [], "some": [], "none": []}
    for claim_id, rows in seed.groupby("id", sort=False):
        found = set(rows["verdict"])
        bucket = "every" if found == {"supported"} else "some" if found & {"supported", "mixed"} else "none"
        buckets[bucket].append(claim_id)
    where = {"every": "in every setting", "some": "in some settings only", "none": "in no setting"}
    parts = [f"{len(ids)} {'holds' if len(ids) == 1 else 'hold'} {where[bucket]} ({', '.join(ids)})"
             for bucket, ids in buckets.items() if ids]
    return {"claims": [i for ids in buckets.values() for i in ids],
            "text": f"Of the seed's {seed['id'].nunique()} claims, {spoken_list(parts)}."}


def claim_finding(rows: pd.DataFrame) -> dict:
    """One claim's sentence: its text, its key number where it is measured first, its verdicts."""
    settings = [{axis: getattr(row, axis) for axis in SETTING_AXES} for row in rows.itertuples()]
    main = rows.iloc[primary_setting(settings)]
    counts = rows["verdict"].value_counts()
    tally = ", ".join(f"{VERDICT_WORDS[verdict]} in {counts[verdict]}" for verdict in VERDICTS if verdict in counts)
    plural = "s" if len(rows) > 1 else ""
    return {"claims": [main["id"]],
            "text": f"“{main['claim'].rstrip('.')}” ({main['id']}): {main['key']}, at {main['setting']}; verdicts over its "
                    f"{len(rows)} setting{plural}: {tally}."}
