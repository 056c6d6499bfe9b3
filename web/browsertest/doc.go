// Package browsertest checks the broker's status page in a real browser:
// Debian's chromium, headless, driven through the DevTools protocol
// (chromedp), against the built broker binary holding data. It is a module
// of its own so that the broker's module does not depend on chromedp.
//
//	cd web/browsertest && go test -count=1 ./...
//	HARAQA_STATUS_SCREENSHOT=../../docs/status-page.png go test -count=1 ./...   # refresh the README's screenshot
//
// Without chromium the test skips (on a developer's machine) or fails
// (HARAQA_REQUIRE_TOOLS=1, as in CI).
package browsertest
