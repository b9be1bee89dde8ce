"""Write the README's connector settings reference from the connectors' settings models.

    python scripts/connector_reference.py          # rewrite README.md between the markers
    python scripts/connector_reference.py --check  # exit 1 when README.md is out of date

tests/connectors/test_settings.py fails when the README differs from what this would write.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.settings import with_reference  # noqa: E402


def main(argv: list[str]) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    fresh = with_reference(text)
    if "--check" in argv:
        if fresh != text:
            print("README.md: the connector reference is out of date; run python scripts/connector_reference.py")
            return 1
        return 0
    if fresh != text:
        readme.write_text(fresh, encoding="utf-8")
        print("README.md: connector reference rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
