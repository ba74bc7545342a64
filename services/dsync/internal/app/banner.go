package app

import (
	"fmt"
	"io"
)

func printBanner(w io.Writer, cfg Config, sys *System) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	mode := "serve --target=" + cfg.Target
	if cfg.Dev {
		mode = "dev (in-process NATS JetStream, SQLite in " + cfg.DataDir + ")"
	}
	p("")
	p("  dsync is running — %s", mode)
	p("")
	if cfg.runs(TargetGateway) {
		p("  Dashboard / REST API   %s", sys.HTTPURL)
		if sys.APIKeyCreated || cfg.Dev {
			p("  API key                %s", sys.APIKey)
		} else {
			p("  API key                (from DSYNC_API_KEY or %s/api_key)", cfg.DataDir)
		}
		p("  Health                 %s/healthz", sys.HTTPURL)
		p("  Metrics                %s/metrics", sys.HTTPURL)
	} else {
		p("  Health                 %s/healthz", sys.HTTPURL)
	}
	if sys.ProjectorAddr != "" {
		p("  DirectoryService gRPC  %s", sys.ProjectorAddr)
	}
	if sys.DispatcherAddr != "" {
		p("  WebhookService gRPC    %s", sys.DispatcherAddr)
	}
	if d := sys.Demo; d != nil {
		p("")
		p("  Demo directory (Okta SCIM v2.0)  %s", d.DirectoryID)
		p("  SCIM base URL          %s", d.SCIMEndpoint)
		if d.BearerToken != "" {
			p("  SCIM bearer token      %s", d.BearerToken)
			p("                         (shown once: it is stored only as a hash)")
		} else {
			p("  SCIM bearer token      shown at first start only; remove %s to start afresh", cfg.DataDir)
		}
		p("")
		p("  Try it:")
		token := d.BearerToken
		if token == "" {
			token = "<token>"
		}
		p(`    curl -s -X POST %s/Users -H "Authorization: Bearer %s" \`, d.SCIMEndpoint, token)
		p(`      -H "Content-Type: application/scim+json" \`)
		p(`      -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"primary":true,"value":"ada@example.com","type":"work"}],"active":true}'`)
		p(`    curl -s "%s/directory_users?directory=%s" -H "Authorization: Bearer %s"`, sys.HTTPURL, d.DirectoryID, sys.APIKey)
	}
	p("")
	p("  Press Ctrl-C to stop.")
	p("")
}
