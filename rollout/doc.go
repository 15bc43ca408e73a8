// Package rollout is the runtime of deploy-like work (deploy, plan, rollback, promote,
// secrets rotate, down) and the only caller of the planners. A deploy runs, in
// deploy.go: scan gate (scan.go) → policy gate (policy.go) → lock → observe
// (observe.go) → desired state (compose.Desire) → plan (strategies.MakePlan) → execute
// (execute.go, with health gates in wait.go, the router in router.go and
// routerclient.go, canary analysis and signals in canary.go, tolerated failures in
// failureaction.go, automatic rollback in revert.go, revision records in history.go)
// → policy verification. network.go and networkverify.go plan and prove network
// segmentation; containers.go lists a project's containers for ps, history and
// network top; down.go removes a project.
//
// It may import compose, strategies, engine, lock, policy, progress, scan, secrets,
// segments and the agent's router types; never plugin, cobra or docker/cli. It
// reaches the engine only through engine.Engine.
package rollout
