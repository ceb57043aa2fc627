"""The local AWS's clock: waits run faster, start allowances keep room for a real start."""
from labkit.localaws import clock


def test_waits_run_at_the_configured_speed_and_bad_values_mean_the_default(monkeypatch):
    monkeypatch.setenv(clock.ENV, "10")
    assert clock.wait(30) == 3.0
    monkeypatch.setenv(clock.ENV, "1")
    assert clock.wait(30) == 30.0 and "AWS's pace" in clock.describe()
    for bad in ("fast", "0", "-2", ""):
        monkeypatch.setenv(clock.ENV, bad)
        assert clock.speed() == clock.DEFAULT_SPEED
    monkeypatch.setenv(clock.ENV, "1000")
    assert clock.speed() == clock.MAX_SPEED


def test_a_grace_period_is_shortened_but_leaves_room_for_a_real_start(monkeypatch):
    monkeypatch.setenv(clock.ENV, "10")
    assert clock.start_allowance(30) == clock.STARTUP_FLOOR_S  # not 3 s: a loaded machine starts Python slower
    assert clock.start_allowance(5) == 5.0  # never longer than the period itself
    assert clock.start_allowance(600) == 60.0
    assert clock.start_allowance(0) == 0.0
