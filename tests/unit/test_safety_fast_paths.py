"""The safety review's shortcuts answer exactly as every screen run in full (hypothesis).

`SafetyReviewer.review` skips a group of screens when a cheap check proves none can fire, and
keeps what repeats (patient state, diagnoses, each prior therapy, the label indication).
`reference_review` runs every screen and judges everything afresh. Over requests of every shape
(values on and around each limit, missing fields, names in other cases and spellings, codes,
combinations) one warm reviewer must always answer as the reference.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from priorauth import PolicySet
from priorauth.engine.request import parse_request
from priorauth.engine.safety import SafetyReviewer, _num, _template

_maybe = st.none() | st.booleans()


def _around(*limits: float) -> st.SearchStrategy[float | None]:
    """None, a limit, just either side of one, or anything in range."""
    near = [x + d for x in limits for d in (-0.01, 0, 0.01)]
    return (
        st.none() | st.sampled_from(near) | st.floats(0, max(limits) * 3).map(lambda x: round(x, 2))
    )


_NAMES = st.sampled_from(
    [
        "ketoconazole",
        "KETOCONAZOLE",
        "  Ketoconazole ",
        "rifampin",
        "Rifampicin",
        "St. John's Wort",
        "dexamethasone",
        "ondansetron",
        "ritonavir",
        "metformin",
    ]
)
_ALLERGENS = st.sampled_from(
    ["cremophor el", "Cremophor", "polyoxyl 35 castor oil", "kolliphor EL", "penicillin", "latex"]
)
_AGENTS = st.sampled_from(
    [
        "doxorubicin",
        "Epirubicin",
        "doxorubicin + cyclophosphamide",
        "paclitaxel",
        "nab-paclitaxel",
        "docetaxel/carboplatin",
        "capecitabine",
        "xeloda",
        "gemcitabine",
    ]
)
_DAY = st.dates(dt.date(2022, 1, 1), dt.date(2026, 11, 1)).map(dt.date.isoformat)


@st.composite
def _therapy(draw: st.DrawFn) -> dict[str, Any]:
    therapy: dict[str, Any] = {
        "agent": draw(_AGENTS),
        "setting": draw(st.none() | st.sampled_from(["adjuvant", "neoadjuvant", "metastatic"])),
    }
    for field in ("start_date", "end_date", "progression_date"):
        day = draw(st.none() | _DAY)
        if day is not None:
            therapy[field] = day
    on_therapy = draw(_maybe)
    if on_therapy is not None:
        therapy["progressed_on_therapy"] = on_therapy
    return therapy


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    # Normal labs with up to three changed: around a limit, anything, or left out.
    labs: dict[str, Any] = {
        "anc_per_mm3": 3200,
        "platelets_per_mm3": 240000,
        "ast_uln_ratio": 0.8,
        "alt_uln_ratio": 0.7,
        "bilirubin_uln_ratio": 0.5,
        "collected_on": "2026-11-20",
    }
    limits = {
        "anc_per_mm3": (1500,),
        "platelets_per_mm3": (100000,),
        "ast_uln_ratio": (2.5, 10),
        "alt_uln_ratio": (2.5, 10),
        "bilirubin_uln_ratio": (1, 1.5, 3),
        "collected_on": (0,),
    }
    for lab in draw(st.lists(st.sampled_from(sorted(limits)), max_size=3, unique=True)):
        labs[lab] = None if lab == "collected_on" else draw(_around(*limits[lab]))
    if draw(st.integers(0, 5)) == 0:  # no labs at all
        labs = {}
    unit = draw(st.sampled_from(["mg/m2", "mg"]))
    regimen: dict[str, Any] = {
        "dose": draw(st.none() | st.sampled_from([16, 20, 20.01, 30, 32, 40, 88, 88.01, 100])),
        "dose_unit": unit,
        "doses_per_cycle": 1,
        "cycle_length_days": 21,
        "with": draw(st.sampled_from([[], ["capecitabine"], ["Xeloda"], ["trastuzumab"]])),
    }
    patient = {
        "birth_date": "1970-01-01",
        "sex": draw(st.sampled_from([None, "female", "male", "other"])),
        "height_cm": draw(st.sampled_from([None, 150, 190])),
        "weight_kg": draw(st.sampled_from([None, 60, 140])),
        "bsa_m2": draw(st.sampled_from([None, 1.6, 2.2, 2.21, 2.5])),
        "pregnant": draw(_maybe),
        "breastfeeding": draw(_maybe),
    }
    medications = draw(
        st.lists(
            _NAMES.map(lambda n: {"name": n})
            | st.sampled_from([{"name": "zzz", "rxnorm": "12345"}, "ketoconazole"]),
            max_size=3,
        )
    )
    allergies = draw(
        st.lists(
            st.builds(
                lambda name, severity: (
                    {"name": name, "severity": severity} if severity else {"name": name}
                ),
                _ALLERGENS,
                st.sampled_from([None, "mild", "moderate", "severe"]),
            ),
            max_size=2,
        )
    )
    disease = {
        "metastatic": True,
        "her2": draw(st.sampled_from([None, "positive", "negative", "low"])),
        "hormone_receptor": draw(st.sampled_from([None, "positive", "negative"])),
        "triple_negative": draw(_maybe),
    }
    return {
        "request_id": "PA-FAST-1",
        "type": draw(st.sampled_from(["initial", "continuation"])),
        "received_at": "2026-11-20T10:00:00Z",
        "drug": {"hcpcs": "J9207"},
        "patient": {k: v for k, v in patient.items() if v is not None},
        "diagnoses": draw(
            st.lists(
                st.sampled_from(
                    ["C50.912", "C78.01", "E11.9", "E11.40", "G62.9", "Z17.0", "Z17.1", "Z17.32"]
                ),
                unique=True,
                max_size=4,
            )
        ),
        "disease": {k: v for k, v in disease.items() if v is not None},
        "prescriber": {"specialty": "207RX0202X"},
        "regimen": {k: v for k, v in regimen.items() if v is not None},
        "labs": {k: v for k, v in labs.items() if v is not None},
        "medications": medications,
        "allergies": allergies,
        "prior_therapies": draw(st.lists(_therapy(), max_size=3)),
    }


_WARM: dict[str, SafetyReviewer] = {}


@settings(max_examples=400, deadline=None)
@given(
    batch=st.lists(requests(), min_size=1, max_size=4),
    dose=st.none() | st.sampled_from([None, 19.99, 20, 32, 40, 40.01]),
)
def test_review_equals_every_screen_run_in_full(
    policies: PolicySet, batch: list[dict[str, Any]], dose: float | None
) -> None:
    compiled = policies.get("ixempra")
    assert compiled is not None and compiled.safety is not None
    # One reviewer for the whole run, so that what it keeps from earlier requests is in play.
    reviewer = _WARM.setdefault("ixempra", SafetyReviewer(compiled.safety))
    for submitted in batch:
        request = parse_request(submitted)
        dosing = compiled.evaluate(request, dt.date(2026, 11, 20)).dosing
        if dosing is not None and dose is not None:
            dosing = dataclasses.replace(dosing, dose_mg_per_m2=dose)
        bsa = dosing.bsa_m2 if dosing is not None else None
        for _ in range(2):  # the second time from what was kept
            assert reviewer.review(request, dosing, bsa) == reviewer.reference_review(
                request, dosing, bsa
            )


_PLACES = ["found", "band", "dose", "allowed"]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from([f"{{{p}}}" for p in _PLACES])
        | st.text(st.characters(blacklist_characters="{}"), max_size=12)
        | st.sampled_from(["{{", "}}", '"', "\\", "'''", "{found!r}", "{dose:>6}"]),
        max_size=8,
    ),
    values=st.fixed_dictionaries({p: st.text(max_size=6) for p in _PLACES}),
)
def test_prepared_message_templates_read_as_format_map(
    pieces: list[str], values: dict[str, str]
) -> None:
    """A screen's message prepared once (`_template`) reads exactly as `format_map` would."""
    template = "".join(pieces)
    try:
        expected = template.format_map(values)
    except ValueError:
        return  # not a template (an unmatched brace): the loader rejects it (PS303)
    assert _template(template, frozenset(_PLACES))(**values) == expected


@given(st.floats(allow_nan=False) | st.integers(-(10**6), 10**6) | st.sampled_from([0.0, -0.0]))
def test_kept_number_texts_read_as_fresh_ones(value: float) -> None:
    """`_num` keeps texts by value; a kept text is the one formatting would give (-0.0 too)."""
    for _ in range(2):
        fresh = f"{value:,.0f}" if value >= 1000 and float(value).is_integer() else f"{value:g}"
        assert _num(value) == fresh
        assert _num(value, "g") == f"{value:g}"
