package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// With -token alone, the operator's routes (status page, metrics,
// profiler) answer only a request bearing the token; without a token
// they stay open, as before.
func TestOpsGuardToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("topic-names")) })
	for _, tc := range []struct {
		token, bearer string
		want          int
	}{
		{"", "", http.StatusOK},
		{"s3cret", "", http.StatusUnauthorized},
		{"s3cret", "wrong", http.StatusUnauthorized},
		{"s3cret", "s3cret", http.StatusOK},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		if tc.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		OpsGuard(tc.token, nil)(ok).ServeHTTP(rec, req)
		if rec.Code != tc.want || (rec.Code != http.StatusOK && rec.Body.String() == "topic-names") {
			t.Errorf("token %q, bearer %q: %d %q, want %d", tc.token, tc.bearer, rec.Code, rec.Body.String(), tc.want)
		}
	}
}
