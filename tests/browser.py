"""A headless system Chromium driven by Selenium through /usr/bin/chromedriver.

Nothing is downloaded: the driver path is explicit and Selenium Manager is told to stay offline
(``SE_OFFLINE``). Without chromium and its driver (``.ci/run`` installs them) the tests skip.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def start_browser(width: int = 1366, height: int = 900) -> Any:
    """A new headless Chromium session, or a pytest skip when the browser is not installed."""
    binary = chromium_binary()
    if binary is None or not os.path.exists(CHROMEDRIVER):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
