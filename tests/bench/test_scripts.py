"""The load and scale benchmarks (run by hand, never by the suite) still import and take their documented options."""

from __future__ import annotations

from bench import load, scale


def test_the_load_bench_takes_its_options() -> None:
    args = load.parser().parse_args(["--seconds", "5", "--clients", "10", "--tenants", "20", "--faults"])
    assert (args.seconds, args.clients, args.tenants, args.faults, args.deliveries) == (5, 10, 20, True, 10_000)


def test_the_scale_bench_takes_its_options() -> None:
    args = scale.parser().parse_args(["--tenants", "100", "--events", "0"])
    assert (args.tenants, args.per_tenant, args.events, args.rounds) == (100, 100, 0, 5)
