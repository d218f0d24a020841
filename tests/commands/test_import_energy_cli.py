"""``ecommunity cloud import-energy`` as an operator runs it: a real process on the database the
cloud uses (SQLite and PostgreSQL), the report, the JSON, refusals and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from ecommunity.cloud.settings import CloudSettings
from ecommunity.community import AllocationModel
from tests.cloud.community_helpers import API

# The cloud fixtures (a migrated database on SQLite and on PostgreSQL, the app on it).
from tests.cloud.conftest import (  # noqa: F401
    _postgres_database,
    _sqlite_template,
    client,
    database_url,
    fast_password_hashing,
    settings,
)
from tests.cloud.energy_helpers import (
    DAY_START,
    energy_community,
    operator_delivery,
    quarter_hours,
)


def run(
    *args: str, url: str | None = None, data_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMMUNITY_CLOUD_")}
    if url is not None:
        env["ECOMMUNITY_CLOUD_DATABASE_URL"] = url
    if data_dir is not None:
        env["ECOMMUNITY_CLOUD_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "ecommunity", "cloud", "import-energy", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_import_report_json_and_refusals(
    client: TestClient,  # noqa: F811
    settings: CloudSettings,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = settings.effective_database_url
    community = energy_community(client, AllocationModel.STATIC)
    delivery = operator_delivery(community, quarter_hours(DAY_START, 96))
    good = tmp_path / "2026-06-15.csv"
    good.write_text(delivery.csv())

    done = run("--community", str(community.id), str(good), url=url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"import 1 into community {community.id}: {len(delivery.rows)} values of 5 metering "
        "points, 2026-06-14T22:00:00Z to 2026-06-15T22:00:00Z"
    )
    assert lines[1] == f"new {len(delivery.rows)}, corrections 0, unchanged 0"
    assert lines[2] == "gaps: none"
    assert lines[3].startswith("allocation check (static): reproduced; 1248 official values")
    assert "largest difference 0 Wh" in lines[3]

    # The same file again, as JSON: nothing new, nothing corrected.
    again = run("--community", str(community.id), "--json", str(good), url=url)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["import_id"], report["new_values"]) == (2, 0)
    assert report["unchanged"] == len(delivery.rows)
    assert report["allocation_check"]["reproduced"] is True

    imports = client.get(
        f"{API}/communities/{community.id}/official-energy/imports",
        headers=community.operator.headers,
    ).json()
    assert [(i["source"], i["imported_by"]) for i in imports] == [(str(good), None)] * 2

    bad = tmp_path / "bad.csv"
    text = delivery.csv().splitlines()
    bad.write_text("\n".join([*text[:3], text[3].replace(",G.", ",X."), "garbage"]) + "\n")
    refused = run("--community", str(community.id), str(bad), url=url)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert f"{bad}: nothing imported, 2 problem(s):" in refused.stderr
    assert f"{bad}:4: quantity is one of" in refused.stderr
    assert f"{bad}:5: 1 fields, the header has 4" in refused.stderr

    unknown = run("--community", "999999", str(good), url=url)
    assert unknown.returncode == 2
    assert "there is no community 999999" in unknown.stderr

    missing = run("--community", str(community.id), str(tmp_path / "nope.csv"), url=url)
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr

    # Nothing of the refused runs was stored: two imports, all values once.
    assert (
        len(
            client.get(
                f"{API}/communities/{community.id}/official-energy/imports",
                headers=community.operator.headers,
            ).json()
        )
        == 2
    )


def test_an_unmigrated_database_is_a_runtime_failure(tmp_path: Path) -> None:
    csv = tmp_path / "values.csv"
    csv.write_text(
        "interval_start,metering_point,quantity,energy_wh\n"
        "2026-06-14T22:00:00Z,AT0030000000000000000000009000001,G.01,5\n"
    )
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    failed = run("--community", "1", str(csv), url=empty)
    assert failed.returncode == 1
    assert "cloud migrate" in failed.stderr


def test_help_and_usage() -> None:
    helped = run("--help")
    assert helped.returncode == 0
    assert "--community" in helped.stdout
    assert "energy_wh" in helped.stdout
    usage = run("values.csv")
    assert usage.returncode == 2
    assert "--community" in usage.stderr
