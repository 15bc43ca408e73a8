package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func named(name string, mutate func(*types.ServiceConfig)) types.ServiceConfig {
	s := good()
	s.Name = name
	mutate(&s)
	return s
}

// levelOf returns the level and allowed reason of the service's findings for rule.
func levelOf(t *testing.T, findings []Finding, service, rule string) (Level, string) {
	t.Helper()
	for _, f := range findings {
		if f.Service == service && f.Rule == rule {
			return f.Level, f.Allowed
		}
	}
	t.Fatalf("no %s finding for %s in %v", rule, service, findings)
	return "", ""
}

func TestLevels(t *testing.T) {
	svc := named("web", func(s *types.ServiceConfig) {
		s.Privileged = true // default deny
		s.ReadOnly = false  // denied by cfg
		s.HealthCheck = nil // required by cfg
		s.Image = "nginx"   // warning only
	})
	tests := []struct {
		name string
		cfg  Config
		want map[string]Level
	}{
		{"defaults", Config{}, map[string]Level{"privileged": Error, "read-only": Warning, "healthcheck": Warning, "latest-tag": Warning}},
		{"deny and require", Config{Deny: []string{"read-only"}, Require: []string{"healthcheck"}},
			map[string]Level{"privileged": Error, "read-only": Error, "healthcheck": Error, "latest-tag": Warning}},
		{"naming a default-deny rule keeps it an error", Config{Require: []string{"privileged"}},
			map[string]Level{"privileged": Error, "read-only": Warning}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			findings, err := Evaluate(project(svc), nil, tc.cfg)
			assert.NilError(t, err)
			for rule, want := range tc.want {
				got, _ := levelOf(t, findings, "web", rule)
				assert.Check(t, is.Equal(got, want), rule)
			}
		})
	}
}

func TestDefaultDeny(t *testing.T) {
	assert.DeepEqual(t, DefaultDeny(), []string{"privileged", "docker-socket", "host-network", "host-pid", "host-ipc", "host-uts"})
	d := DefaultDeny()
	d[0] = "read-only"
	assert.Check(t, is.Equal(DefaultDeny()[0], "privileged"), "DefaultDeny must return a fresh slice")
}

func TestAllowExceptions(t *testing.T) {
	p := project(
		named("agent", func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
			s.ReadOnly = false
		}),
		named("web", func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
		}),
	)
	cfg := Config{Allow: map[string][]Exception{
		"agent":    {{Rule: "docker-socket", Reason: "the agent manages containers"}, {Rule: "read-only", Reason: " writes its cache "}},
		"disabled": {{Rule: "privileged", Reason: "service not in this project: ignored"}},
	}}
	findings, err := Evaluate(p, nil, cfg)
	assert.NilError(t, err)

	level, allowed := levelOf(t, findings, "agent", "docker-socket")
	assert.Check(t, is.Equal(level, Error))
	assert.Check(t, is.Equal(allowed, "the agent manages containers"))
	_, allowed = levelOf(t, findings, "agent", "read-only")
	assert.Check(t, is.Equal(allowed, "writes its cache"), "a warning is marked allowed too")
	_, allowed = levelOf(t, findings, "web", "docker-socket")
	assert.Check(t, is.Equal(allowed, ""), "exceptions are per service")

	blocking := Blocking(findings)
	assert.Assert(t, is.Len(blocking, 1), "%v", blocking)
	assert.Check(t, is.Equal(blocking[0].Service, "web"))
	assert.Check(t, is.Equal(blocking[0].Rule, "docker-socket"))
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		is   error
		want []string
	}{
		{"unknown require", Config{Require: []string{"privileges"}}, ErrUnknownRule,
			[]string{`policy.require: unknown policy rule "privileges" (valid rules: privileged, cap-add, docker-socket,`, "public-ports)"}},
		{"unknown deny", Config{Deny: []string{"read-only", "readonly"}}, ErrUnknownRule, []string{`policy.deny: unknown policy rule "readonly"`}},
		{"unknown allow", Config{Allow: map[string][]Exception{"web": {{Rule: "root", Reason: "legacy"}}}}, ErrUnknownRule,
			[]string{`service "web": allow: unknown policy rule "root"`}},
		{"no reason", Config{Allow: map[string][]Exception{"web": {{Rule: "privileged", Reason: "  "}}}}, ErrNoReason,
			[]string{`service "web": allow "privileged": allow exceptions need a reason`}},
		{"every problem, in order", Config{
			Deny: []string{"x"},
			Allow: map[string][]Exception{
				"b": {{Rule: "privileged"}},
				"a": {{Rule: "y", Reason: "r"}},
			}}, ErrNoReason,
			[]string{"policy.deny: unknown policy rule \"x\"", "\nservice \"a\": allow: unknown policy rule \"y\"", "\nservice \"b\": allow \"privileged\": allow exceptions need a reason"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			findings, err := Evaluate(project(good()), nil, tc.cfg)
			assert.Check(t, is.Nil(findings))
			assert.Assert(t, err != nil)
			assert.Check(t, errors.Is(err, tc.is), err.Error())
			last := -1
			for _, w := range tc.want {
				i := strings.Index(err.Error(), w)
				assert.Check(t, i > last, "%q not found in order in %q", w, err.Error())
				last = i
			}
		})
	}
	_, err := Evaluate(nil, nil, Config{})
	assert.Check(t, is.ErrorContains(err, "no project"))
}

func TestSorting(t *testing.T) {
	p := project(
		named("web", func(s *types.ServiceConfig) {
			s.Ports = []types.ServicePortConfig{{Target: 443, Published: "443"}, {Target: 80, Published: "80"}}
			s.Privileged = true
			s.ReadOnly = false
		}),
		named("api", func(s *types.ServiceConfig) { s.Image = "api"; s.Environment["API_TOKEN"] = str("t") }),
		named("db", func(s *types.ServiceConfig) { s.Deploy = nil }),
	)
	findings, err := Evaluate(p, nil, Config{})
	assert.NilError(t, err)
	var got []string
	for _, f := range findings {
		got = append(got, f.Service+" "+f.Rule+" "+f.Message)
	}
	assert.DeepEqual(t, got, []string{
		`api latest-tag image: "api" has no tag, so it means :latest`,
		"api secrets-in-env environment: API_TOKEN has a literal value and its name says it is a secret",
		"db limits deploy.resources.limits lacks memory (CIS 5.11), cpus (CIS 5.12), pids (CIS 5.29); x-lifecycle.policy.defaults provides none",
		"web privileged privileged: true gives the container every capability and all host devices",
		// a rule's findings keep the order of the compose file
		`web public-ports ports: "443:443" binds 0.0.0.0 (every host interface)`,
		`web public-ports ports: "80:80" binds 0.0.0.0 (every host interface)`,
		"web read-only read_only is not true: the container's root filesystem is writable",
	})
}

func TestSecretValueNeverInMessage(t *testing.T) {
	secrets := map[string]string{
		"DB_PASSWORD":       "correct-horse-battery-staple",
		"GITHUB_TOKEN":      "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
		"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
		"SESSION":           "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg==",
	}
	svc := named("web", func(s *types.ServiceConfig) {
		s.Logging = &types.LoggingConfig{Driver: "local"}
		for k, v := range secrets {
			s.Environment[k] = str(v)
		}
		s.Labels["com.example.apikey"] = "k3y-Vv9sQ7pL2xR5"
	})
	findings, err := Evaluate(project(svc), nil, Config{})
	assert.NilError(t, err)
	out, err := json.Marshal(findings)
	assert.NilError(t, err)
	var names []string
	for _, f := range findings {
		assert.Check(t, is.Equal(f.Rule, "secrets-in-env"))
		names = append(names, strings.Fields(f.Message)[1])
	}
	assert.DeepEqual(t, names, []string{"AWS_ACCESS_KEY_ID", "DB_PASSWORD", "GITHUB_TOKEN", "SESSION", "com.example.apikey"})
	for _, v := range secrets {
		assert.Check(t, !strings.Contains(string(out), v), "secret value leaked: %s", out)
		assert.Check(t, !strings.Contains(string(out), v[:8]), "part of a secret value leaked: %s", out)
	}
	assert.Check(t, !strings.Contains(string(out), "k3y-Vv9s"))
}

func TestHighEntropy(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg==", true},
		{"sk9Xq2LmA7vB4nR8tY1wZ3cD", true},
		{"sk9Xq2LmA7vB4nR8tY1", false},                           // too short
		{"OrganizationSettingsManagerFactory", false},            // no digit
		{"aaaaaaaaaaaaaaaaaaaaaaaa1", false},                     // low entropy
		{"sk9Xq2LmA7vB4nR8tY1wZ3cD.example", false},              // not base64/hex-ish
		{"4b825dc642cb6eb9a060e54bf8d69288fbee4904", false},      // git sha: hex tops out below 4 bits
		{"550e8400-e29b-41d4-a716-446655440000", false},          // uuid
		{"/usr/local/sbin:/usr/local/bin:/usr/sbin:/bin", false}, // a path list
	}
	for _, tc := range tests {
		assert.Check(t, is.Equal(highEntropy(tc.v), tc.want), tc.v)
	}
}

func TestImageUserFacts(t *testing.T) {
	images := map[string]ImageFacts{
		"root:1":    {Found: true},
		"rootuid:1": {Found: true, User: "0"},
		"app:1":     {Found: true, User: "app"},
	}
	tests := []struct {
		image, user string
		want        string // "" = passes
	}{
		{"root:1", "", `no user: set and image "root:1" sets no USER, so the container runs as root`},
		{"rootuid:1", "", `no user: set and image "rootuid:1" has USER "0", so the container runs as root`},
		{"app:1", "", ""},
		{"root:1", "1000", ""},
		{"app:1", "root", `user: "root" runs the container as root`},
		{"unknown:1", "", `no user: set; runs as the default user of image "unknown:1", which could not be checked`},
		{"unknown:1", "1000:1000", ""},
	}
	for _, tc := range tests {
		t.Run(tc.image+"/"+tc.user, func(t *testing.T) {
			svc := named("web", func(s *types.ServiceConfig) { s.Image = tc.image; s.User = tc.user })
			findings, err := Evaluate(project(svc), images, Config{Require: []string{"non-root"}})
			assert.NilError(t, err)
			var msgs []string
			for _, f := range findings {
				if f.Rule == "non-root" {
					msgs = append(msgs, f.Message)
					assert.Check(t, is.Equal(f.Level, Error))
					assert.Check(t, is.Equal(f.CIS, "4.1"))
				}
			}
			if tc.want == "" {
				assert.Check(t, is.Len(msgs, 0), "%v", msgs)
			} else {
				assert.Check(t, is.DeepEqual(msgs, []string{tc.want}))
			}
		})
	}
}

func TestFindingJSON(t *testing.T) {
	out, err := json.Marshal(Finding{Rule: "latest-tag", Level: Warning, Service: "web", Message: "m"})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(out), `{"rule":"latest-tag","level":"warning","service":"web","message":"m"}`))
}

func bigProject(n int) (*types.Project, map[string]ImageFacts) {
	p := &types.Project{Name: "big", Services: types.Services{}}
	images := map[string]ImageFacts{}
	for i := range n {
		s := good()
		s.Name = fmt.Sprintf("svc-%03d", i)
		s.Image = fmt.Sprintf("registry.example/app-%d:1.%d", i, i)
		images[s.Image] = ImageFacts{Found: true, User: []string{"", "app"}[i%2]}
		for j := range 20 {
			s.Environment[fmt.Sprintf("SETTING_%d", j)] = str(fmt.Sprintf("value-%d", j))
		}
		s.Environment["API_TOKEN"] = str("Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg")
		switch i % 4 {
		case 0:
			s.Privileged = true
			s.Deploy = nil
		case 1:
			s.Ports = append(s.Ports, types.ServicePortConfig{Target: 80, Published: fmt.Sprint(8000 + i)})
			s.HealthCheck = nil
		case 2:
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
			s.ReadOnly = false
		}
		p.Services[s.Name] = s
	}
	return p, images
}

func TestEvaluate100(t *testing.T) {
	p, images := bigProject(100)
	findings, err := Evaluate(p, images, Config{Deny: []string{"limits"}, Allow: map[string][]Exception{"svc-002": {{Rule: "docker-socket", Reason: "ci"}}}})
	assert.NilError(t, err)
	assert.Check(t, len(findings) > 100)
	assert.Check(t, is.Len(Blocking(findings), 25+25+24), "privileged, limits on i%%4==0; docker-socket on i%%4==2 except one allowed")
}

func BenchmarkEvaluate100(b *testing.B) {
	p, images := bigProject(100)
	cfg := Config{Deny: []string{"limits"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Evaluate(p, images, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
