package strategies

// Observed is the engine state that planning needs, read by labels before planning.
type Observed struct {
	// Containers are the project's containers (all states).
	Containers []ObservedContainer
	// Networks and Volumes hold the engine names that exist.
	Networks map[string]bool
	Volumes  map[string]bool
	// ImageIDs maps each image reference the project uses to its local ID ("" when missing).
	ImageIDs map[string]string
	// PortOwners are host ports published by any container on the engine.
	PortOwners []PortOwner
	// Router is the project's traffic router container, nil when there is none.
	Router *ObservedContainer
	// RouterHash is the router's ports-and-networks label (see compose.RouterHash).
	RouterHash string
	// ServiceRouters are internal services' own routers, by service; their ConfigHash
	// is the router hash (see compose.InternalRouterHash).
	ServiceRouters map[string]*ObservedContainer
	// Routes are the router's backends per service, as the router has them now.
	Routes map[string][]RouteBackend
	// Revisions is the highest revision each service ever had, from its history records
	// (a failed revision's containers are gone, but its number stays used).
	Revisions map[string]int
}

// ObservedContainer is one existing container of the project.
type ObservedContainer struct {
	ID         string
	Name       string
	Service    string
	Number     int
	Revision   int
	ConfigHash string
	Image      string
	ImageID    string
	State      string // created, running, exited, …
	Health     string // "", starting, healthy, unhealthy
	ExitCode   int    // meaningful when State is exited
	// PublishesPorts is true when the container holds host ports itself (created
	// before its service was behind the router).
	PublishesPorts bool
	// AgentFeatures are what a router's agent understands beyond config version 1
	// (compose.LabelAgentFeatures); nil for other containers and for older routers.
	AgentFeatures []string
}

// Running reports whether the container is up (restarting counts: the engine is on it).
func (c ObservedContainer) Running() bool {
	return c.State == "running" || c.State == "restarting"
}

// PortOwner is a host port published by a container.
type PortOwner struct {
	Container string
	HostIP    string
	HostPort  uint16
	Protocol  string
}
