/**
 * A CodeMirror 6 editor as a React component. The document is owned by
 * CodeMirror; `onChange` reports edits. Extensions that change over time (the
 * completion schema) go through `dynamic`, reconfigured without losing the
 * cursor or undo history.
 */
import { useEffect, useRef } from "react";
import { Compartment, EditorState, type Extension } from "@codemirror/state";
import { EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, HighlightStyle, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { tags } from "@lezer/highlight";
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from "@codemirror/autocomplete";
import { lintGutter, lintKeymap } from "@codemirror/lint";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";

/** Syntax colours from the stylesheet's variables, so light and dark schemes both keep AA contrast. */
const highlight = HighlightStyle.define([
  { tag: [tags.keyword, tags.operatorKeyword, tags.modifier], color: "var(--syntax-keyword)" },
  { tag: [tags.string, tags.special(tags.string), tags.regexp], color: "var(--syntax-string)" },
  { tag: [tags.number, tags.bool, tags.null, tags.atom], color: "var(--syntax-number)" },
  { tag: [tags.comment, tags.lineComment, tags.blockComment], color: "var(--syntax-comment)", fontStyle: "italic" },
  { tag: [tags.typeName, tags.className, tags.standard(tags.name)], color: "var(--syntax-type)" },
  { tag: [tags.function(tags.variableName), tags.function(tags.propertyName)], color: "var(--syntax-function)" },
  { tag: tags.invalid, color: "var(--bad)" },
]);

export interface CodeEditorProps {
  value: string;
  onChange?(value: string): void;
  /** Language, linting, completion: fixed for the editor's life. */
  extensions?: Extension[];
  /** Reconfigured whenever it changes (by identity). */
  dynamic?: Extension;
  readOnly?: boolean;
  label: string;
  id?: string;
  minHeight?: string;
  /** Take the keyboard's focus once created (an editor opened by a button). */
  autoFocus?: boolean;
}

export function CodeEditor(props: CodeEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const dynamic = useRef(new Compartment());
  const onChange = useRef(props.onChange);
  onChange.current = props.onChange;

  useEffect(() => {
    const state = EditorState.create({
      doc: props.value,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        syntaxHighlighting(highlight),
        autocompletion(),
        lintGutter(),
        // Tab indents; Escape then Tab leaves the editor (CodeMirror's accessible default).
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...completionKeymap, ...lintKeymap, indentWithTab]),
        EditorView.lineWrapping,
        EditorState.readOnly.of(!!props.readOnly),
        EditorView.editable.of(!props.readOnly),
        EditorView.contentAttributes.of({ "aria-label": props.label, ...(props.id ? { id: props.id } : {}) }),
        EditorView.theme({ "&": { minHeight: props.minHeight ?? "12rem" }, ".cm-scroller": { minHeight: props.minHeight ?? "12rem" } }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) onChange.current?.(u.state.doc.toString());
        }),
        dynamic.current.of(props.dynamic ?? []),
        ...(props.extensions ?? []),
      ],
    });
    view.current = new EditorView({ state, parent: host.current! });
    if (props.autoFocus) view.current.focus();
    return () => view.current?.destroy();
    // The editor is created once; later props flow through `dynamic` and `value`.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    view.current?.dispatch({ effects: dynamic.current.reconfigure(props.dynamic ?? []) });
  }, [props.dynamic]);

  // Outside changes (a template inserted, a reset) replace the document.
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== props.value) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: props.value } });
  }, [props.value]);

  return <div className="editor" ref={host} />;
}
