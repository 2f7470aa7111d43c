package v2

// Condition types. All conditions are metav1.Condition.
const (
	// ConditionCreated: a machine is allocated in metal-api for the firewall.
	ConditionCreated = "Created"
	// ConditionReady: metal-api reports the machine alive and phoned home (firewall), or
	// enough firewalls are ready (set).
	ConditionReady = "Ready"
	// ConditionProvisioned latches true once the firewall was fully ready for the first time.
	ConditionProvisioned = "Provisioned"
	// ConditionConnected: the agent applied rules for the current spec recently.
	ConditionConnected = "Connected"
	// ConditionSeedConnected: the agent reconciled against the seed recently.
	ConditionSeedConnected = "SeedConnected"
	// ConditionDistance: the agent configured the requested distance.
	ConditionDistance = "Distance"
	// ConditionMonitorDeployed: the FirewallMonitor exists in the workload cluster.
	ConditionMonitorDeployed = "MonitorDeployed"
	// ConditionUserdataReady: every userdataContents source could be read and rendered.
	ConditionUserdataReady = "UserdataReady"
	// ConditionPaused: the object or an owner is paused; nothing is written.
	ConditionPaused = "Paused"
	// ConditionAvailable: a deployment has at least its desired number of ready firewalls.
	ConditionAvailable = "Available"
	// ConditionProgressing: a deployment is rolling out or finished its last rollout.
	ConditionProgressing = "Progressing"
	// ConditionRBACProvisioned: the agent's ServiceAccount and Role exist.
	ConditionRBACProvisioned = "RBACProvisioned"
	// ConditionFirewallsCreated (set, deployment): every firewall has its machine. False with
	// reason AllocationFailed carries the newest metal-api allocation error of the set's (the
	// deployment's sets') firewalls, naming the firewall; reason Allocating while allocations
	// are under way without an error.
	ConditionFirewallsCreated = "FirewallsCreated"
	// ConditionMaintained: the last maintenance step (image auto-update) went through; False
	// says why not. A failed step is retried and never blocks a rollout.
	ConditionMaintained = "Maintained"
)

// Condition reasons.
const (
	ReasonCreated                  = "Created"
	ReasonNotCreated               = "NotCreated"
	ReasonAllocating               = "Allocating"
	ReasonAllocationFailed         = "AllocationFailed"
	ReasonFirewallsCreated         = "FirewallsCreated"
	ReasonMultipleFirewalls        = "MultipleFirewalls"
	ReasonMachineVanished          = "MachineVanished"
	ReasonReady                    = "Ready"
	ReasonNotReady                 = "NotReady"
	ReasonNotFinishing             = "NotFinishing"
	ReasonCrashLoop                = "CrashLoop"
	ReasonProvisioned              = "Provisioned"
	ReasonNotProvisioned           = "NotProvisioned"
	ReasonConnected                = "Connected"
	ReasonNotConnected             = "NotConnected"
	ReasonStoppedReconciling       = "StoppedReconciling"
	ReasonRulesFailed              = "RulesFailed"
	ReasonNotChecking              = "NotChecking"
	ReasonConfigured               = "Configured"
	ReasonNotConfigured            = "NotConfigured"
	ReasonDeployed                 = "Deployed"
	ReasonNotDeployed              = "NotDeployed"
	ReasonUserdataRendered         = "Rendered"
	ReasonUserdataEmpty            = "Empty"
	ReasonSecretMissing            = "SecretMissing"
	ReasonConfigMapMissing         = "ConfigMapMissing"
	ReasonKeyMissing               = "KeyMissing"
	ReasonUserdataTooLarge         = "UserdataTooLarge"
	ReasonPaused                   = "Paused"
	ReasonNotPaused                = "NotPaused"
	ReasonMinimumReplicasAvailable = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavail   = "MinimumReplicasUnavailable"
	ReasonNewFirewallSetCreated    = "NewFirewallSetCreated"
	ReasonFirewallSetCreateError   = "FirewallSetCreateError"
	ReasonFirewallSetUpdated       = "FirewallSetUpdated"
	ReasonNewFirewallSetAvailable  = "NewFirewallSetAvailable"
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	ReasonRBACProvisioned          = "Provisioned"
	ReasonRBACError                = "Error"
	ReasonMetalAPIError            = "MetalAPIError"
	ReasonCreateTimeout            = "CreateTimeout"
	ReasonHealthTimeout            = "HealthTimeout"
	ReasonMaintained               = "Maintained"
	ReasonMaintenanceFailed        = "MaintenanceFailed"
	ReasonRollbackRevisionNotFound = "RollbackRevisionNotFound"
	ReasonDeletionPaused           = "DeletionWaitsForUnpause"
)
