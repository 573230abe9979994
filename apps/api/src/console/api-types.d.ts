// The API's answers as the console receives them (JSON), taken from the API's own response
// schemas, so a field the console reads that the API does not send is a type error. Only
// the type checker reads this file; the browser never loads it.
import type { z } from "zod";
import type * as S from "../schemas.ts";

export type Issuer = z.output<typeof S.Issuer>;
export type CertificateSummary = z.output<typeof S.CertificateList>["items"][number];
export type CertificateDetails = z.output<typeof S.CertificateDetails>;
export type Provisioner = z.output<typeof S.ProvisionerListed>;
export type ProvisionerCreated = z.output<typeof S.ProvisionerCreated>;
export type EabKeyCreated = z.output<typeof S.EabKeyCreated>;
export type Overview = z.output<typeof S.Overview>;
export type AuditEvent = z.output<typeof S.AuditPage>["items"][number];
export type SchedulerStatus = z.output<typeof S.SchedulerStatus>;
export type CrlState = z.output<typeof S.CrlStatus>[number];
export type Operator = z.output<typeof S.Operator>;
export type ReissueProgress = z.output<typeof S.ReissueProgress>;
/** what POST /v1/provisioners takes */
export type ProvisionerBody = z.input<typeof S.ProvisionerBody>;
export type JobState = SchedulerStatus["jobs"][number];
export type JobRun = SchedulerStatus["runs"][number];
export type CrlInfo = NonNullable<CrlState["full"]>;
export type CrlPublished = z.output<typeof S.CrlPublished>;
export type DoctorReport = z.output<typeof S.DoctorReport>;
export type OperatorCreated = z.output<typeof S.OperatorCreated>;
/** what POST /v1/certificates takes */
export type IssueBody = z.input<typeof S.IssueBody>;
export type RelyingPartyView = z.output<typeof S.RelyingPartyView>;
export type CertificateExtension = CertificateDetails["extensions"][number];
