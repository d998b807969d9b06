"""The `glassbox` command: `dev`, `agent` and `edge`.

It lives beside the runtimes, not in the contract package: `glassbox/` needs only grpcio
and protobuf, while each subcommand needs its runtime's extra (`glassbox[agent]`,
`glassbox[edge]`, both for `dev`). The runtimes are imported only by the subcommand that
runs them, so `glassbox edge` runs without LangGraph and a missing extra is named with the
`pip install` that fixes it.
"""
