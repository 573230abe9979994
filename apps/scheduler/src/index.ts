// The jobs and their runner live in @pki/jobs, which the API and the CLI use too; this
// app is the process that runs them on their schedules.
export * from "@pki/jobs";
