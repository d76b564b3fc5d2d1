"""The workbench in a real browser: Debian's Chromium driven by Selenium against the service on
127.0.0.1 (uvicorn in a thread). One browser for the whole module.

A pharmacist signs in, claims the oldest case and approves it; a medical director denies
another with a reason, and the notice's PDF holds it; a submitter reaches no review page;
every page passes axe-core with no violations.

Skipped with a message when Chromium, its driver or axe-core is missing, except with CI=true
(where `.ci/run` installs them), which fails instead. PRIORAUTH_SCREENSHOTS=docs/images writes
the README's screenshots.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from priorauth.service.config import Settings
from priorauth.service.runtime import open_service
from tests.conftest import example
from tests.service_fixtures import ROOT, TOKENS, LoopbackServer

AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _missing() -> str | None:
    if CHROMIUM is None or DRIVER is None:
        return "Debian's chromium and chromium-driver are not installed (.ci/install-chromium)"
    if not AXE.is_file():
        return "axe-core is not installed (make test runs npm ci in tests/browser)"
    return None


@pytest.fixture(scope="module")
def parts() -> None:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="module")
def site(parts: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    folder = tmp_path_factory.mktemp("browser")
    service = open_service(
        Settings(database_url=f"sqlite:///{folder / 'priorauth.db'}", policy_dir=ROOT / "policies")
    )
    service.add_user("clinic", "submitter", "Sunrise Oncology", token=TOKENS["clinic"])
    service.add_user(
        "Dana Reyes", "pharmacist", None, "1245319599", "oncology-pharmacy", TOKENS["pharmacist"]
    )
    service.add_user(
        "Dr. Sam Okafor",
        "medical-director",
        None,
        "1679576722",
        "medical-oncology",
        TOKENS["md1"],
    )
    clinic = service.authenticate(TOKENS["clinic"])
    cases = {}
    # The oldest first: a dose exception, which a pharmacist decides.
    for name, member in [
        ("07-pended-dose-exception.json", "M-1001"),
        ("05-pended-not-covered-indication.json", "M-1002"),
        ("10-pended-safety-review.json", "M-1003"),
        ("04-pended-criteria-not-met-age.json", "M-1004"),
        ("infliximab-05-pended-missing-information-tb-screen.json", "M-1005"),
    ]:
        cases[name] = service.submit(clinic, example(name), member).case["case_id"]
        time.sleep(0.01)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(executable_path=str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        # localhost: a secure context, so the browser keeps the Secure session cookie on http.
        with LoopbackServer(service, host_name="localhost") as base:
            yield base, (driver, cases, service)
    finally:
        driver.quit()
        service.close()


def _sign_in(base: str, driver: Any, who: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base + "/signin")
    driver.find_element(By.ID, "token").send_keys(TOKENS[who])
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait_for(driver, "Sign out")


def _wait_for_url(driver: Any, part: str) -> None:
    """Until the browser is on a page whose URL holds `part` (the page before it may name
    that URL in its links, so its source proves nothing)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: part in d.current_url)


def _wait_for(driver: Any, text: str) -> None:
    """Until the page (after a click that navigates) holds `text` in its URL or its source."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: text in d.current_url or text in d.page_source)


def _axe(driver: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page shown."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', help: String(e)}]));"
    )
    return [
        {
            "id": v["id"],
            "help": v.get("help"),
            "nodes": [n.get("target") for n in v.get("nodes", [])],
        }
        for v in result
    ]


def _screenshot(driver: Any, name: str) -> None:
    folder = os.environ.get("PRIORAUTH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def test_a_pharmacist_claims_the_oldest_case_and_approves_it(site: tuple[str, Any]) -> None:
    from selenium.webdriver.common.by import By

    base, (driver, cases, service) = site
    _sign_in(base, driver, "pharmacist")
    assert driver.current_url.endswith("/work")
    assert "Dana Reyes" in driver.page_source
    _screenshot(driver, "worklist.png")
    # htmx came from the package and refreshes the rows.
    assert driver.execute_script("return typeof htmx") == "object"
    rows = driver.find_elements(By.CSS_SELECTOR, "table.worklist tbody tr")
    assert rows[0].get_attribute("data-case") == cases["07-pended-dose-exception.json"]
    rows[0].find_element(By.XPATH, ".//button[normalize-space()='Claim']").click()
    # The claim leads to the case, held by the pharmacist.
    _wait_for_url(driver, "/work/cases/")
    _wait_for(driver, 'class="facts"')
    assert "Dana Reyes" in driver.find_element(By.CSS_SELECTOR, "dl.facts").text
    _screenshot(driver, "case.png")
    driver.find_element(By.ID, "a-approve").click()
    driver.find_element(By.CSS_SELECTOR, "#decision-form button[type=submit]").click()
    _wait_for(driver, "Decided: approved.")
    record = service.read(
        service.authenticate(TOKENS["md1"]), cases["07-pended-dose-exception.json"]
    )
    assert record["status"] == "approved" and record["reviews"][0]["reviewer"] == "Dana Reyes"


def test_a_medical_director_denies_with_a_reason_that_the_letter_holds(
    site: tuple[str, Any],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, (driver, cases, _) = site
    _sign_in(base, driver, "md1")
    driver.get(base + f"/work/cases/{cases['05-pended-not-covered-indication.json']}")
    driver.find_element(By.ID, "a-deny").click()
    Select(driver.find_element(By.ID, "reason_code")).select_by_value("not-covered-indication")
    words = "Non-small cell lung cancer is not a covered indication for this drug."
    driver.find_element(By.ID, "reason").send_keys(words)
    driver.find_element(By.CSS_SELECTOR, "#decision-form button[type=submit]").click()
    _wait_for(driver, "Decided: denied.")
    link = driver.find_elements(By.CSS_SELECTOR, "a.pdf")[0].get_attribute("href")
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    pdf = httpx.get(link, cookies=cookies, timeout=60)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert words in _pdf_text(pdf.content)


def _pdf_text(content: bytes) -> str:
    pdftotext = shutil.which("pdftotext")
    if pdftotext:
        text = subprocess.run(
            [pdftotext, "-layout", "-", "-"], input=content, capture_output=True, check=True
        ).stdout.decode()
    else:
        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)
    return " ".join(text.split())


def test_a_submitter_reaches_no_review_page(site: tuple[str, Any]) -> None:
    base, (driver, cases, _) = site
    _sign_in(base, driver, "clinic")
    assert driver.current_url.endswith("/signed-in")
    case_id = cases["10-pended-safety-review.json"]
    for path in ("/work", f"/work/cases/{case_id}", "/work/dashboard", "/work/policies"):
        driver.get(base + path)
        assert "for pharmacists, medical directors and admins" in driver.page_source, path
        assert case_id not in driver.page_source or path.endswith(case_id)
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    for path in ("/work", f"/work/cases/{case_id}"):
        assert httpx.get(base + path, cookies=cookies).status_code == 403


def test_the_pages_have_no_accessibility_violations(site: tuple[str, Any]) -> None:
    base, (driver, cases, _) = site
    driver.delete_all_cookies()
    driver.get(base + "/signin")
    found = {"/signin": _axe(driver)}
    _sign_in(base, driver, "md1")
    decided = cases["05-pended-not-covered-indication.json"]
    for path in (
        "/work",
        f"/work/cases/{cases['04-pended-criteria-not-met-age.json']}",
        f"/work/cases/{cases['10-pended-safety-review.json']}",
        f"/work/cases/{decided}",
        "/work/dashboard",
        "/work/policies",
        "/work/policies/ixempra",
    ):
        driver.get(base + path)
        found[path] = _axe(driver)
        if path == "/work/dashboard":
            _screenshot(driver, "dashboard.png")
    # The notices too (the denial above left them).
    from selenium.webdriver.common.by import By

    driver.get(base + f"/work/cases/{decided}")
    links = driver.find_elements(By.XPATH, "//a[normalize-space()='HTML']")
    for href in [link.get_attribute("href") for link in links]:
        driver.get(href)
        found[href] = _axe(driver)
    assert any("/work/notices/" in path for path in found)
    violations = {path: v for path, v in found.items() if v}
    assert not violations, json.dumps(violations, indent=1)[:4000]
    # The check does find what it looks for: an image without a text alternative.
    driver.get("data:text/html,<html lang=en><title>t</title><main><img src=x.png></main></html>")
    assert "image-alt" in {v["id"] for v in _axe(driver)}


def test_the_api_docs_work_offline(site: tuple[str, Any]) -> None:
    """Swagger UI from the package: the page draws the API's operations."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    base, (driver, _, _) = site
    driver.get(base + "/docs")
    WebDriverWait(driver, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock"))
    )
    assert "/v1/requests" in driver.page_source
