"""The login page works at handheld size and a worker gets in."""
from tests.e2e.conftest import shoot, sign_in


def test_login_at_handheld_size(live_server, e2e_world, handheld):
    page = handheld.new_page()
    page.set_viewport_size({"width": 360, "height": 640})
    page.goto(f"{live_server}/login")
    shoot(page, "login-360")
    page.fill("#username", "worker")
    page.fill("#password", "wrong-password")
    page.click("button[type=submit]")
    assert "Wrong username or password" in page.content()
    sign_in(page, live_server, "worker")
    assert "/login" not in page.url
    shoot(page, "after-login-360")
