// `npm install` (postinstall) builds the embedded database template a first start copies.
// A failure only costs the first start its speed, so it never fails the install.
import { buildEmbeddedTemplate } from "../src/embedded-template.ts";

try {
  const dir = await buildEmbeddedTemplate();
  console.log(`embedded database template ready: ${dir}`);
} catch (error) {
  console.warn(`embedded database template not built (the first start will create the database itself): ${(error as Error).message}`);
}
