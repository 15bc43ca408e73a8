// Package strategies turns the desired state (compose.Desired) and the observed engine
// state (Observed) into a Plan: a list of steps, each with its cause and the steps it
// must wait for. Planning is pure: no engine calls, so `plan` and `deploy --dry-run`
// print exactly what `deploy` runs, and the golden tests compare printed plans.
//
// One file per concept: plan.go (the Plan and its steps), observed.go (the input from
// the engine), planner.go (MakePlan: the diff, dependency order, ports, setup and
// orphans), recreate.go (services that run one copy at a time), routed.go (what the
// routed strategies share: the diff against the router's routes, bring-up, route and
// stop steps), rolling.go, bluegreen.go, canary.go (one strategy each), history.go
// (pruning old revisions) and router.go (the routers' own steps). A new strategy is a
// new file and a case in planRouted.
//
// It imports compose (for the desired state and its types) and nothing that talks to
// the engine.
package strategies
