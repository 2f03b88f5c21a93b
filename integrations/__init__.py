"""Bridges to the community's tools, each an optional extra: LeRobot-format datasets in and out
(`integrations.lerobot`) and a model server for the `vla-eval` harness (`integrations.vla_eval_server`)."""
