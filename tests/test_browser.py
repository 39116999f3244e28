"""The coordinators' pages in a real browser (issue 18): Debian's Chromium, driven through its
chromedriver by Selenium, against a real uvicorn server. Sign in with the keyboard, follow the
links a team lead follows, narrow what is overdue to one municipality, switch language, check
that what people typed cannot run, read why a page cannot be shown, sign out, and sign in
again from a link to come back to it.

`.ci/run` installs chromium and chromium-driver and sets PATHWAYS_REQUIRE_BROWSER=1, so there
a missing browser fails the suite; elsewhere these tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from web_support import Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
MISSING = None if CHROMIUM and DRIVER else (
    "no system Chromium with chromedriver (Debian: apt install chromium chromium-driver)")


@pytest.fixture
def browser() -> Iterator[Any]:
    if MISSING:
        if os.environ.get("PATHWAYS_REQUIRE_BROWSER") == "1":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_team_lead_signs_in_reads_overdue_and_nothing_she_sees_runs(
        server: Server, browser: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.expected_conditions import url_contains
    from selenium.webdriver.support.ui import Select
    from selenium.webdriver.support.ui import WebDriverWait

    gp, ppr = server.token("dr.a"), server.token("p1")
    with httpx.Client(base_url=server.url, headers=gp) as api:
        child = api.post("/api/instances", json={
            "pathway": "mistrivsel_referral", "subject": "B-1", "birth_date": "2014-05-02",
            "role": "gp", "area": "norddjurs", "at": "2026-11-02T09:00:00+01:00",
            "values": {"severity": "moderate", "consent_exchange": True,
                       "concern": "<img src=x onerror=alert(1)>"}}).json()["id"]
        noted = api.post(f"/api/instances/{child}/events", headers=ppr, json={
            "event": "triage_to_ppr", "role": "ppr", "at": "2026-11-20T09:00:00+01:00",
            "note": "<script>alert('note')</script>"})
        assert noted.status_code == 200, noted.text
        api.post("/api/instances", json={
            "pathway": "mistrivsel_referral", "subject": "B-2", "birth_date": "2014-05-02",
            "role": "gp", "area": "norddjurs", "at": "2026-11-02T09:00:00+01:00",
            "values": {"severity": "moderate", "consent_exchange": True}}).raise_for_status()
    browser.get(f"{server.url}/")  # the server's address: what is overdue, once signed in
    assert "/ui/login?" in browser.current_url  # not signed in: the sign-in page
    field = browser.find_element(By.ID, "token")
    label = browser.find_element(By.CSS_SELECTOR, "label[for=token]")
    assert label.text == "API token"
    token = server.token("leader")["Authorization"].removeprefix("Bearer ")
    field.send_keys(token)
    field.send_keys(Keys.ENTER)  # the keyboard is enough
    WebDriverWait(browser, 10).until(url_contains("/ui/overdue"))
    assert browser.current_url.endswith("/ui/overdue?lang=en")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overdue now"
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "tr")]
    assert any("B-2" in r and "Municipal triage" in r for r in rows), rows
    browser.find_element(By.LINK_TEXT, "da").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overskredet nu"
    assert "Visitation i kommunen" in browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "da"
    browser.find_element(By.LINK_TEXT, "norddjurs").click()  # one municipality's
    assert browser.current_url.endswith("/ui/overdue?lang=da&area=norddjurs")
    assert browser.find_element(By.CSS_SELECTOR, "p.narrowed").text.startswith("Kun:")
    browser.find_element(By.LINK_TEXT, "Vis alt, der er overskredet").click()
    assert browser.current_url.endswith("/ui/overdue?lang=da")
    browser.get(f"{server.url}/ui/instances/{child}?lang=da")
    assert "<script>alert('note')</script>" in browser.find_element(By.TAG_NAME, "main").text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - nothing typed by a person ran
    browser.find_element(By.PARTIAL_LINK_TEXT, "B-1").click()
    assert "Barn B-1" in browser.find_element(By.TAG_NAME, "h1").text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    browser.get(f"{server.url}/ui/report")
    assert browser.find_element(By.CSS_SELECTOR, "svg title").get_attribute("textContent")
    Select(browser.find_element(By.ID, "by")).select_by_visible_text("Organisation")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(url_contains("by=organisation"))
    assert "Organisation" in [th.text for th in browser.find_elements(By.TAG_NAME, "th")]
    browser.find_element(By.LINK_TEXT, "Pathways").click()  # every pathway, from the menu
    browser.find_element(By.CSS_SELECTOR, "a[href^='/ui/pathways/mistrivsel_referral']").click()
    assert browser.find_element(By.TAG_NAME, "caption").text == "Steps"
    browser.get(f"{server.url}/ui/instances/0000000000000000?lang=da")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Ikke fundet"
    assert "0000000000000000" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    browser.find_element(By.CSS_SELECTOR, "form.out button").send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(url_contains("/ui/login"))
    assert browser.current_url.endswith("/ui/login?lang=da")  # signed out
    browser.get(f"{server.url}/ui/instances/{child}?lang=sv")  # a link from a colleague
    assert browser.find_element(By.CSS_SELECTOR, "label[for=token]").text == "API-nyckel"
    browser.find_element(By.ID, "token").send_keys(token, Keys.ENTER)
    WebDriverWait(browser, 10).until(url_contains("/ui/instances/"))
    assert browser.current_url.endswith(f"/ui/instances/{child}?lang=sv")  # back where asked
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "sv"
