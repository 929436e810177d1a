"""The workload's spread before a drill: ``chaosali.spread.controls`` puts the replicas of the
Deployments a drill judges back where their topology spread constraints want them, so that the
drill starts from the placement its FMEA assumes, whatever ran before it."""
