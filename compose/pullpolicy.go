package compose

import (
	"fmt"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/xhit/go-str2duration/v2"
)

// PullPolicyOf is a service's pull_policy as deploy applies it: always, never, build,
// missing (also for if_not_present and when unset), or refresh with how old the
// engine's copy of the image may get (daily, weekly, every_<duration>, or refresh with
// pull_refresh_after).
func PullPolicyOf(svc types.ServiceConfig) (policy string, refreshAfter time.Duration, err error) {
	policy, refreshAfter, err = svc.GetPullPolicy()
	if err != nil {
		return "", 0, fmt.Errorf("%w: use always, missing, never, build, daily, weekly, every_<duration> or refresh", err)
	}
	if policy == types.PullPolicyIfNotPresent {
		policy = types.PullPolicyMissing
	}
	if policy == types.PullPolicyRefresh && refreshAfter == 0 {
		refreshAfter, err = str2duration.ParseDuration(svc.PullRefreshAfter)
		if err != nil || refreshAfter <= 0 {
			return "", 0, fmt.Errorf("pull_policy refresh needs pull_refresh_after, a positive duration such as 12h or 2d (got %q)", svc.PullRefreshAfter)
		}
	}
	return policy, refreshAfter, nil
}
