package router

import "slices"

// FeatureProtocolAuto: routes may have protocol auto and a sniff window.
const FeatureProtocolAuto = "protocol-auto"

// Features are what this router understands beyond config version 1. The plugin writes
// them on the router's container when it creates it (compose.LabelAgentFeatures), so a
// later plugin knows what an older router can be sent by asking the engine, rather than
// by sending a config and reading the refusal.
var Features = []string{FeatureProtocolAuto}

// HasFeature reports whether features (as written on a router's container) include f.
func HasFeature(features []string, f string) bool {
	return slices.Contains(features, f)
}
