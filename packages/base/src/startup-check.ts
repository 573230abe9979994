/** Refusal to serve, with the issuer and the reason. */
export class StartupCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupCheckError";
  }
}
