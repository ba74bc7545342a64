package dashboard

// Provider is an identity provider a directory can be created for, with the
// steps an administrator follows in that IdP's console.
type Provider struct {
	// Type is the WorkOS directory type the REST API takes.
	Type string
	Name string
	// Short is the two-letter mark of the provider's card.
	Short string
	// URLLabel and TokenLabel are what the IdP's form calls the two fields.
	URLLabel, TokenLabel string
	Steps                []string
	// Note is shown under the steps: the IdP's quirks worth knowing.
	Note string
}

// providers are listed in the order the "new directory" page shows them.
var providers = []Provider{
	{
		Type: "okta scim v2.0", Name: "Okta", Short: "Ok",
		URLLabel: "SCIM connector base URL", TokenLabel: "API Token (Authentication Mode: HTTP Header)",
		Steps: []string{
			`In the Okta Admin Console, open your SCIM app (Applications → Applications; for a new one, "Create App Integration" → SAML 2.0 or OIDC, then on its General tab set Provisioning to "SCIM").`,
			`Open the "Provisioning" tab.`,
			`Click "Configure API Integration" and tick "Enable API integration".`,
			`Paste the SCIM base URL and the bearer token shown here into "Base URL" and "API Token".`,
			`Click "Test API Credentials"; Okta reports that the app was verified.`,
			`Save, then under "To App" click Edit and enable "Create Users", "Update User Attributes" and "Deactivate Users".`,
			`Assign people on the "Assignments" tab and push groups on the "Push Groups" tab.`,
		},
		Note: "Okta sends a user's groups only through Push Groups, not through assignments.",
	},
	{
		Type: "azure scim v2.0", Name: "Microsoft Entra ID", Short: "En",
		URLLabel: "Tenant URL", TokenLabel: "Secret Token",
		Steps: []string{
			`In the Microsoft Entra admin center, go to Enterprise applications → "New application" → "Create your own application" (non-gallery).`,
			`Open "Provisioning", click "Get started" and set Provisioning Mode to "Automatic".`,
			`Under "Admin Credentials", paste the SCIM base URL into "Tenant URL" and the bearer token into "Secret Token".`,
			`Click "Test Connection", then "Save".`,
			`Under "Users and groups", assign the users and groups to provision.`,
			`Back in "Provisioning", set Provisioning Status to "On".`,
		},
		Note: `Entra ID provisions in cycles of about 40 minutes; use "Provision on demand" to send one user now.`,
	},
	{
		Type: "onelogin scim v2.0", Name: "OneLogin", Short: "OL",
		URLLabel: "SCIM Base URL", TokenLabel: "SCIM Bearer Token",
		Steps: []string{
			`In OneLogin, go to Applications → "Add App" and pick "SCIM Provisioner with SAML (SCIM v2 Enterprise)".`,
			`On the "Configuration" tab, paste the SCIM base URL and the bearer token, then click "Enable" under API Connection.`,
			`On the "Provisioning" tab, tick "Enable provisioning" and choose what deleting and suspending a user does.`,
			`Assign users on the "Users" tab (or with a role), and map groups with a rule on the "Rules" tab.`,
		},
	},
	{
		Type: "jumpcloud scim v2.0", Name: "JumpCloud", Short: "JC",
		URLLabel: "Base URL", TokenLabel: "Token Key",
		Steps: []string{
			`In the JumpCloud Admin Portal, go to SSO Applications → "Add New Application" → "Custom Application" and enable "Manage Single Sign-On" or "Export users to this app (Identity Management)".`,
			`On the "Identity Management" tab, choose SCIM API type "SCIM 2.0".`,
			`Paste the SCIM base URL into "Base URL" and the bearer token into "Token Key".`,
			`Click "Test Connection", then "Activate".`,
			`On the "User Groups" tab, bind the groups whose members should be provisioned.`,
		},
	},
	{
		Type: "pingfederate scim v2.0", Name: "PingFederate", Short: "PF",
		URLLabel: "SCIM URL", TokenLabel: "OAuth 2 Bearer Token",
		Steps: []string{
			`In PingFederate, go to Applications → SP Connections and create or open the connection; enable "Outbound Provisioning" with the SCIM Connector.`,
			`On the "Target" step, paste the SCIM base URL into "SCIM URL", choose SCIM version 2.0 and authentication "OAuth 2 Bearer Token", and paste the bearer token.`,
			`Configure a channel: the data store and the users and groups to provision, and the attribute mapping.`,
			`Activate the channel and the connection.`,
		},
	},
	{
		Type: "rippling scim v2.0", Name: "Rippling", Short: "Ri",
		URLLabel: "SCIM base URL", TokenLabel: "API token",
		Steps: []string{
			`In Rippling, open App Shop and add your app (or a custom app) with SCIM provisioning.`,
			`When asked for the SCIM connection, paste the SCIM base URL and the bearer token.`,
			`Choose who gets access (rules by department, role, or everyone) and the groups to push.`,
			`Finish the setup; Rippling provisions the matching people.`,
		},
	},
	{
		Type: "cyberark scim v2.0", Name: "CyberArk", Short: "CA",
		URLLabel: "SCIM Service URL", TokenLabel: "Bearer Token",
		Steps: []string{
			`In CyberArk Identity Administration, go to Apps & Widgets → Web Apps → "Add Web Apps" and add a custom SCIM app.`,
			`On the "Provisioning" tab, tick "Enable provisioning for this application".`,
			`Paste the SCIM base URL into "SCIM Service URL", choose Authorization Type "Authorization Header" with Header Type "Bearer Token", and paste the bearer token.`,
			`Click "Verify", then map roles to provision and save.`,
		},
	},
	{
		Type: "generic scim v2.0", Name: "Generic SCIM 2.0", Short: "{}",
		URLLabel: "SCIM base URL", TokenLabel: "Bearer token",
		Steps: []string{
			`Point any SCIM 2.0 client at the SCIM base URL (it serves /Users, /Groups, /ServiceProviderConfig, /Schemas and /ResourceTypes).`,
			`Send the bearer token on every request: "Authorization: Bearer <token>".`,
			`Send bodies as "Content-Type: application/scim+json" (application/json works too).`,
		},
	},
}

// providerFor returns the provider of a directory type; unknown types get
// the generic steps.
func providerFor(typ string) Provider {
	for _, p := range providers {
		if p.Type == typ {
			return p
		}
	}
	return providers[len(providers)-1]
}
