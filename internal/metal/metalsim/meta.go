package metalsim

// Operation names of the routes the manager never calls; the client's
// operations are the metal.Op* constants.
const (
	opMachineDelete = "machine.delete"
	opVersion       = "version"
	opHealth        = "health"
)

// Version is what the simulator reports on GET /v1/version.
const Version = "v0.42.5-metalsim"

// versionResponse is rest.version.
type versionResponse struct {
	Name             string `json:"name"`
	Version          string `json:"version"`
	ReleaseVersion   string `json:"release_version,omitempty"`
	BuildDate        string `json:"builddate"`
	GitSHA1          string `json:"gitsha1"`
	Revision         string `json:"revision"`
	MinClientVersion string `json:"min_client_version"`
}

// healthResponse is rest.HealthResponse.
type healthResponse struct {
	Status   string                    `json:"status"`
	Message  string                    `json:"message"`
	Services map[string]healthResponse `json:"services,omitempty"`
}

func (s *Simulator) version(*reqCtx) (any, error) {
	return versionResponse{
		Name: "metal-api", Version: Version, BuildDate: "", GitSHA1: "", Revision: "metalsim",
		MinClientVersion: "v0.0.0",
	}, nil
}

func (s *Simulator) health(*reqCtx) (any, error) {
	return healthResponse{
		Status: "healthy", Message: "metalsim is healthy",
		Services: map[string]healthResponse{
			"rethinkdb": {Status: "healthy", Message: "simulated"},
			"ipam":      {Status: "healthy", Message: "simulated"},
		},
	}, nil
}
