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
