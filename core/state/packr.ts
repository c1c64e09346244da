/** The MessagePack codec state files use (msgpackr), shared by the file format and the record writer. */
import { Packr, Unpackr } from "msgpackr";

// Plain objects stay objects (struct values); Maps in state are saved as entry lists by their codec.
export const packr = new Packr({ useRecords: false, moreTypes: true });
export const unpackr = new Unpackr({ useRecords: false, moreTypes: true });
