"""`make bench`: the performance figures of README "Performance and cost", measured on the in-process local stack.

Counts and ratios per node execution (DynamoDB requests and units, EventBridge entries, Lambda invocations),
modelled AWS cost beside Step Functions, local throughput, engine time against raw DynamoDB time, and cold-start
ingredients (handler import time, layer size). Run `python -m bench --help`.
"""
