"""Build policies/vocabulary/drug-names.json.gz, the drug names the vocabulary recognizes.

The names come from the `drug-named-entity-recognition` package (MIT License, Fast Data Science
Ltd), whose dictionary joins DrugBank open data, MeSH, MedlinePlus, NHS and Wikipedia names:
about 20,000 products and 107,000 names (generic names, brand names, salts, combinations).
Loading that pickle takes seconds, so the vocabulary ships what it needs of it as compact JSON:
each name, in the vocabulary's word form (clinical.drugs.words), mapped to the products it
names.

    pip install -e '.[vocabulary]'
    python scripts/build_drug_names.py            # writes policies/vocabulary/drug-names.json.gz

Run it after upgrading the package; commit the result with the package version in the message.
"""

from __future__ import annotations

import bz2
import gzip
import importlib.metadata
import importlib.resources
import json
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from priorauth.clinical.drugs import words  # noqa: E402

PACKAGE = "drug-named-entity-recognition"
TARGET = ROOT / "policies" / "vocabulary" / "drug-names.json.gz"


def main() -> None:
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"{PACKAGE} is not installed: pip install -e '.[vocabulary]'")
    resource = importlib.resources.files("drug_named_entity_recognition").joinpath(
        "drug_ner_dictionary.pkl.bz2"
    )
    with resource.open("rb") as raw, bz2.open(raw, "rb") as file:
        data = pickle.load(file)  # the package's own data file, from the installed package
    variants: dict[str, list[str]] = data["drug_variant_to_canonical"]
    products = sorted({canonical for canonicals in variants.values() for canonical in canonicals})
    index = {name: i for i, name in enumerate(products)}
    names: dict[str, list[int]] = {}
    for variant, canonicals in variants.items():
        key = " ".join(words(variant))
        if len(key) < 3:
            continue  # one or two letters name nothing safely
        found = names.setdefault(key, [])
        found.extend(index[c] for c in canonicals if index[c] not in found)
    for product, i in index.items():  # a product's own name names it
        key = " ".join(words(product))
        if len(key) >= 3 and i not in names.setdefault(key, []):
            names[key].append(i)
    payload = {
        "source": f"{PACKAGE} {version} (MIT License, Fast Data Science Ltd)",
        "products": products,
        "names": dict(sorted(names.items())),
    }
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    # mtime 0: the same names give the same bytes, so a rebuild shows no change in git.
    with TARGET.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(text.encode("utf-8"))
    print(f"{TARGET.relative_to(ROOT)}: {len(products):,} products, {len(names):,} names")


if __name__ == "__main__":
    main()
