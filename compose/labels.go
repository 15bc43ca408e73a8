package compose

// Labels shared with Docker Compose, so `docker compose ps/logs/down` work on the
// containers, networks and volumes that docker lifecycle creates.
const (
	LabelProject         = "com.docker.compose.project"
	LabelService         = "com.docker.compose.service"
	LabelContainerNumber = "com.docker.compose.container-number"
	LabelConfigHash      = "com.docker.compose.config-hash"
	LabelOneoff          = "com.docker.compose.oneoff"
	LabelVersion         = "com.docker.compose.version"
	LabelWorkingDir      = "com.docker.compose.project.working_dir"
	LabelConfigFiles     = "com.docker.compose.project.config_files"
	LabelImageDigest     = "com.docker.compose.image"
	LabelDependsOn       = "com.docker.compose.depends_on"
	LabelNetwork         = "com.docker.compose.network"
	LabelVolume          = "com.docker.compose.volume"
)

// Labels of docker lifecycle's own.
const (
	// LabelRevision is the service revision a container belongs to (1, 2, …).
	LabelRevision = "io.lifecycle.revision"
	// LabelRole says what a container is for: RoleApp for service containers.
	LabelRole = "io.lifecycle.role"
	// LabelImageRef is the image reference the container was created from (the engine's
	// list shows an image ID instead once the tag moves).
	LabelImageRef = "io.lifecycle.image"
	// LabelStrategy is the rollout strategy the container was deployed with.
	LabelStrategy = "io.lifecycle.strategy"
	// LabelManagedBy marks objects created by docker lifecycle (value: ManagedByValue).
	LabelManagedBy = "io.lifecycle.managed-by"
)

const (
	RoleApp        = "app"
	ManagedByValue = "docker-lifecycle"
	// ComposeVersionLabelValue is written into com.docker.compose.version; Compose reads it
	// only for display, and it names the compose file format we follow.
	ComposeVersionLabelValue = "2.40.3"
)
