/** The GraphQL schema (SDL). `bun run schema:print` writes the printed schema to control-plane/schema.graphql. */
export const typeDefs = /* GraphQL */ `
"""Microseconds since the Unix epoch (or a duration in microseconds), as a number."""
scalar Micros
"""Any JSON value."""
scalar JSON

enum JobState {
  Created
  Compiling
  Scheduling
  Running
  CheckpointStopping
  Stopping
  Recovering
  Restarting
  Rescaling
  Finishing
  Failing
  Failed
  Stopped
  Finished
}

"""How to stop: none (keep running), checkpoint (final checkpoint, then stop), graceful (as checkpoint), immediate (stop now; the next start restores the last checkpoint), force (kill the worker)."""
enum StopMode {
  none
  checkpoint
  graceful
  immediate
  force
}

"""What a token may do: a VIEWER reads and subscribes; an EDITOR also creates and changes pipelines and UDFs; an ADMIN also manages tokens, connection profiles and settings."""
enum Role {
  ADMIN
  EDITOR
  VIEWER
}

"""Who is calling: the token's name (null for RUNNEL_API_TOKENS entries, and on an open loopback server without tokens, where everyone is an ADMIN) and its role."""
type Viewer {
  name: String
  role: Role!
}

"""A stored API token; the token itself is never returned after creation."""
type ApiToken {
  id: ID!
  name: String!
  role: Role!
  createdAt: Micros!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

type PipelineEdge {
  cursor: String!
  node: Pipeline!
}

type PipelineConnection {
  edges: [PipelineEdge!]!
  pageInfo: PageInfo!
}

type Pipeline {
  id: ID!
  name: String!
  """The SQL, with the values of secret options and passwords in URLs replaced by '***'."""
  query: String!
  udfs: [String!]!
  parallelism: Int!
  checkpointIntervalMicros: Micros!
  """Desired stop mode; none while it should run."""
  stop: StopMode!
  version: Int!
  createdAt: Micros!
  updatedAt: Micros!
  jobs: [Job!]!
  versions: [PipelineVersion!]!
}

type PipelineVersion {
  version: Int!
  """The SQL, secrets masked as in Pipeline.query."""
  query: String!
  parallelism: Int!
  checkpointIntervalMicros: Micros!
  createdAt: Micros!
}

type Job {
  id: ID!
  pipelineId: ID!
  """Observed state."""
  state: JobState!
  """Desired: whether it should run."""
  runningDesired: Boolean!
  runId: Int!
  parallelism: Int!
  tasks: Int
  """Where each subtask of the running job is (null when it does not run)."""
  placement: [TaskPlacement!]
  restarts: Int!
  startTime: Micros
  finishTime: Micros
  failureMessage: String
  createdAt: Micros!
  checkpoints: [Checkpoint!]!
  events: [JobEvent!]!
  metrics: JobMetrics
}

type Checkpoint {
  checkpointId: Int!
  runId: Int!
  at: Micros!
  durationMicros: Micros!
  """Part of durationMicros until every subtask had aligned its barrier and snapshotted its state (the rest is writing the checkpoint and committing sinks)."""
  alignmentMicros: Micros
  """Bytes written to the checkpoint store."""
  sizeBytes: Float
  then: String!
}

"""A subtask and the worker process running it."""
type TaskPlacement {
  """stage/subtask, as the dataflow graph names stages."""
  task: String!
  """The worker process's index in the job (0 when the job runs in one process)."""
  worker: Int!
  host: String!
  pid: Int!
}

type JobEvent {
  at: Micros!
  fromState: JobState
  toState: JobState!
  reason: String!
}

type OperatorMetrics {
  operatorId: String!
  operatorName: String!
  subtaskIndex: Int!
  recordsIn: Float!
  recordsOut: Float!
  bytesIn: Float!
  bytesOut: Float!
  watermark: Micros
  backpressureMs: Float!
  lateDropped: Float!
  badRecords: Float!
  """Entries in the subtask's keyed state, as of its last checkpoint."""
  stateEntries: Float!
  """Bytes of state files the subtask's last checkpoint needs to restore it."""
  stateBytes: Float!
  """The worker process running the subtask (0 when the job runs in one process)."""
  worker: Int!
}

type JobMetrics {
  jobId: ID!
  at: Micros!
  operators: [OperatorMetrics!]!
}

type JobUpdate {
  job: Job!
  """Why the job changed (the event's reason), when it did."""
  reason: String
}

type OutputRows {
  pipelineId: ID!
  lines: [String!]!
}

type Connector {
  name: String!
  description: String
  source: Boolean!
  sink: Boolean!
  """Whether a table of this connector can be a lookup table (type = 'lookup'), read by key in lookup joins."""
  lookup: Boolean!
  """The options as JSON Schema (the same declaration validates WITH (...) options)."""
  optionsSchema: JSON!
}

type Format {
  name: String!
  description: String
  optionsSchema: JSON!
}

type Udf {
  id: ID!
  name: String!
  definition: String!
  description: String
  createdAt: Micros!
}

type ConnectionProfile {
  id: ID!
  name: String!
  connector: String!
  """Options other than secrets."""
  config: JSON!
  """Names of the secret options; their values are never returned."""
  secretKeys: [String!]!
  createdAt: Micros!
}

type GraphNode {
  id: ID!
  label: String!
  parallelism: Int!
  inputs: [ID!]!
}

type Diagnostic {
  message: String!
  line: Int
  column: Int
  option: String
}

type QueryValidation {
  valid: Boolean!
  """The dataflow graph, as the CLI prints it."""
  graph: String
  nodes: [GraphNode!]
  tasks: Int
  diagnostics: [Diagnostic!]!
  """The tables the script declares, with their columns (also those that build when a later statement is wrong)."""
  tables: [QueryTable!]!
}

type QueryTable {
  name: String!
  connector: String
  columns: [QueryColumn!]!
}

type QueryColumn {
  name: String!
  """The SQL type, as written in DDL (BIGINT, TEXT, TIMESTAMP...)."""
  type: String!
}

enum FunctionKind {
  SCALAR
  AGGREGATE
  WINDOW
  UDF
  UDAF
}

"""A function a query may call."""
type SqlFunction {
  name: String!
  kind: FunctionKind!
  """Arity, when the function has a fixed range."""
  minArgs: Int
  maxArgs: Int
}

interface UserError {
  message: String!
}

type SqlError implements UserError {
  message: String!
  line: Int
  column: Int
}

type OptionError implements UserError {
  message: String!
  """The option at fault (a WITH option, or an input field)."""
  option: String!
  line: Int
  column: Int
}

type NotFoundError implements UserError {
  message: String!
  id: ID!
}

type ConflictError implements UserError {
  message: String!
}

type Query {
  """Who is calling, and with which role."""
  viewer: Viewer!
  """Stored API tokens (not those of RUNNEL_API_TOKENS), newest first, without the tokens themselves (ADMIN)."""
  apiTokens: [ApiToken!]!
  pipelines(first: Int = 20, after: String): PipelineConnection!
  pipeline(id: ID!): Pipeline
  job(id: ID!): Job
  connectors: [Connector!]!
  formats: [Format!]!
  """Built-in functions and those of plugins (stored UDFs are in udfs)."""
  functions: [SqlFunction!]!
  udfs: [Udf!]!
  connectionProfiles: [ConnectionProfile!]!
  """Plans the SQL without creating anything (EDITOR)."""
  validateQuery(sql: String!, udfs: [String!], parallelism: Int = 1): QueryValidation!
}

input CreatePipelineInput {
  name: String!
  query: String!
  parallelism: Int = 1
  checkpointIntervalMicros: Micros
  udfs: [String!]
}
type PipelinePayload {
  pipeline: Pipeline!
}
union PipelineResult = PipelinePayload | SqlError | OptionError | NotFoundError | ConflictError

input UpdatePipelineInput {
  id: ID!
  parallelism: Int
  checkpointIntervalMicros: Micros
  """
  A new query. The running job takes a checkpoint and restarts with it, keeping the state of every operator
  the edit left unchanged (a filter or projection edited, a sink added); an edit that changes an operator
  holding state is refused, naming it, unless ignoreState is true.
  """
  query: String
  """With a new query: start the job from scratch instead of keeping its state."""
  ignoreState: Boolean
}
input StopPipelineInput {
  id: ID!
  mode: StopMode! = checkpoint
}
input StartPipelineInput {
  id: ID!
}
input RestartPipelineInput {
  id: ID!
  ignoreState: Boolean = false
}
input DeletePipelineInput {
  id: ID!
}

input CreateUdfInput {
  name: String!
  """A module whose default export is a UDF ({ args, returns, fn }), a UDAF ({ args, returns, init, add, result }) or a plugin."""
  definition: String!
  description: String
}
type UdfPayload {
  udf: Udf!
}
union UdfResult = UdfPayload | OptionError | NotFoundError | ConflictError

input CreateConnectionProfileInput {
  name: String!
  connector: String!
  config: JSON!
  """Write-only options (passwords, keys)."""
  secrets: JSON
}
type ConnectionProfilePayload {
  connectionProfile: ConnectionProfile!
}
union ConnectionProfileResult = ConnectionProfilePayload | OptionError | NotFoundError | ConflictError

input DeleteInput {
  id: ID!
}

input CreateApiTokenInput {
  name: String!
  """What the token may do; VIEWER unless given (grant more when it is needed)."""
  role: Role = VIEWER
}
type ApiTokenPayload {
  id: ID!
  name: String!
  role: Role!
  """Shown once; only its hash is stored."""
  token: String!
}

type DeletedPayload {
  id: ID!
}
union DeleteResult = DeletedPayload | NotFoundError | ConflictError

"""Pipelines and UDFs need the EDITOR role; connection profiles and API tokens the ADMIN role."""
type Mutation {
  createPipeline(input: CreatePipelineInput!): PipelineResult!
  updatePipeline(input: UpdatePipelineInput!): PipelineResult!
  stopPipeline(input: StopPipelineInput!): PipelineResult!
  startPipeline(input: StartPipelineInput!): PipelineResult!
  restartPipeline(input: RestartPipelineInput!): PipelineResult!
  deletePipeline(input: DeletePipelineInput!): DeleteResult!
  createUdf(input: CreateUdfInput!): UdfResult!
  deleteUdf(input: DeleteInput!): DeleteResult!
  createConnectionProfile(input: CreateConnectionProfileInput!): ConnectionProfileResult!
  deleteConnectionProfile(input: DeleteInput!): DeleteResult!
  createApiToken(input: CreateApiTokenInput!): ApiTokenPayload!
  deleteApiToken(input: DeleteInput!): DeleteResult!
}

type Subscription {
  """The pipeline's jobs now, then each change of state."""
  jobUpdates(pipelineId: ID!): JobUpdate!
  """Per-operator metrics now, then at most once per intervalMs."""
  jobMetrics(jobId: ID!, intervalMs: Int = 1000): JobMetrics!
  """The job's checkpoints now (newest first), then each one as it completes."""
  jobCheckpoints(jobId: ID!): Checkpoint!
  """Rows of the pipeline's preview output (a bare SELECT): recent ones first, then each committed batch."""
  pipelineOutput(pipelineId: ID!): OutputRows!
}
`;
